"""Masks for every family: the one way the server renders, whatever a family does with regions.

A family whose network mixes styles per pixel (AdaIN's regional statistics) declares ``MaskMode.NATIVE`` and gets
its masks as they are. Every other family (``MaskMode.COMPOSITED``) gets spatial control here, by compositing:

- the styles without a mask are rendered together, blended by the family's own means (one pass), and each masked
  style is rendered alone over the whole content; all these renders go to the model in one ``stylize_batch`` call
  (a batching family runs them as one batch);
- each mask (grayscale, white where its style applies) is resized to the content and feathered with a Gaussian of
  :data:`FEATHER` times the content's shorter side, so a hard-edged mask leaves no seam;
- per pixel, the renders present there are averaged by weight x mask, and the content shows through where the masks
  cover less than all of it: with coverage ``c = min(1, sum of masks)``, the result is
  ``c * sum(w_i m_i out_i) / sum(w_i m_i) + (1 - c) * content``. A style without a mask covers everything; a pixel
  no style covers keeps the content, as AdaIN's masks do.

Alpha and colour preservation apply to each render, so they hold in every region. Cost: one pass for the unmasked
styles plus one per masked style with a non-zero weight and a mask that is not all black.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

from model.family import BatchItem, MaskMode, StyleModel
from model.images import resize_shorter
from model.network import StopCheck

__all__ = ["FEATHER", "composite", "feathered", "render_batch"]

#: Standard deviation of the mask feathering, as a fraction of the content's shorter side (2.6 px at 256 px).
FEATHER = 0.01


@dataclass(frozen=True)
class _Plan:
    """One item's renders: ``items`` to stylize, each with its weight and its feathered mask (None: everywhere)."""

    content: Image.Image  # resized to the output size
    items: list[BatchItem]
    weights: list[float]
    masks: list[np.ndarray | None]  # (H, W) float32 in [0, 1]


def render_batch(model: StyleModel, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                 ) -> list[Image.Image]:
    """``model.stylize_batch(items)``, with masks honoured by compositing when the family has no native masks."""
    masked = [any(s.mask is not None for s in item.styles) for item in items]
    if model.capabilities.masks is MaskMode.NATIVE or not any(masked):
        return model.stylize_batch(items, should_stop=should_stop)
    for item in items:  # the whole request's rules first: a render of one of its styles alone would pass them
        model.check([s.spec for s in item.styles], item.options)
    plans = [_plan(item) if m else None for item, m in zip(items, masked, strict=True)]
    work = [sub for item, plan in zip(items, plans, strict=True) for sub in (plan.items if plan else [item])]
    renders = iter(model.stylize_batch(work, should_stop=should_stop) if work else [])
    out = []
    for plan in plans:
        if plan is None:
            out.append(next(renders))
        else:
            outputs = [next(renders) for _ in plan.items]
            out.append(composite(plan.content, outputs, plan.weights, plan.masks))
    return out


def _plan(item: BatchItem) -> _Plan:
    """The renders of a masked item: the unmasked styles together, then each masked style alone."""
    content = resize_shorter(item.content.convert("RGB"), item.options.content_size)
    options = replace(item.options, content_size=0)
    total = sum(s.weight for s in item.styles)
    plain = [s for s in item.styles if s.mask is None]
    items, weights, masks = [], [], []
    if sum(s.weight for s in plain) > 0:
        items.append(BatchItem(content, tuple(plain), options))
        weights.append(sum(s.weight for s in plain) / total)
        masks.append(None)
    for style in item.styles:
        if style.mask is None or style.weight <= 0:
            continue
        mask = feathered(style.mask, content.size)
        if mask.max() > 0:  # an all-black mask: the style applies nowhere
            items.append(BatchItem(content, (replace(style, weight=1.0, mask=None),), options))
            weights.append(style.weight / total)
            masks.append(mask)
    return _Plan(content, items, weights, masks)


def feathered(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A grayscale mask at ``size`` (bilinear), blurred by :data:`FEATHER` of the shorter side -> (H, W) in [0, 1].

    The blur extends the border pixels, so an all-white mask stays all white."""
    resized = mask.convert("L").resize(size, Image.Resampling.BILINEAR)
    radius = FEATHER * min(size)
    if radius >= 0.5:
        resized = resized.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(resized, dtype=np.float32) / np.float32(255)


def composite(content: Image.Image, outputs: Sequence[Image.Image], weights: Sequence[float],
              masks: Sequence[np.ndarray | None]) -> Image.Image:
    """Blends renders of one content by weight x mask; the content shows where the masks cover less than all.

    ``masks`` are (H, W) arrays in [0, 1] at the content's size, None for a render that applies everywhere."""
    base = np.asarray(content.convert("RGB"), dtype=np.float32)
    if not outputs:
        return content.convert("RGB")
    ones = np.ones(base.shape[:2], dtype=np.float32)
    full = [ones if m is None else m for m in masks]
    numerator = np.zeros_like(base)
    denominator = np.zeros(base.shape[:2], dtype=np.float32)
    for out, weight, mask in zip(outputs, weights, full, strict=True):
        numerator += (weight * mask)[..., None] * np.asarray(out.convert("RGB"), dtype=np.float32)
        denominator += weight * mask
    coverage = np.minimum(1.0, sum(full))[..., None]
    styled = numerator / np.maximum(denominator, 1e-6)[..., None]
    pixels = np.where(denominator[..., None] > 1e-6, coverage * styled + (1 - coverage) * base, base)
    return Image.fromarray(np.round(pixels).clip(0, 255).astype(np.uint8), mode="RGB")
