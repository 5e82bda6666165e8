"""Neutral measures of a stylization, computed with a VGG19 encoder: how far a result is from its content and style.

Two families of measures, each normalised by the size of its target so that numbers from different layers, images
and encoders can be compared:

- AdaIN's (Huang & Belongie 2017, section 6): the content distance is the relu4_1 feature distance to the content;
  the style distance compares per-channel means and standard deviations over relu1_1..relu4_1.
- Gatys' (Gatys, Ecker & Bethge 2016): the content distance is taken at relu4_2; the style distance compares Gram
  matrices over relu1_1..relu5_1.

A real stylization moves the style distance toward the style (well below the content image's own) while its
content distance stays below the style image's own. Images are (1, 3, H, W) RGB tensors in [0, 1]; the result and
the content are compared at the same size, the style at its own size (means, stds and Grams do not depend on it).

:func:`layout_similarity` needs no encoder: whether a result still shows its content's picture from afar, the measure
that stays meaningful where a line or dot style replaces every feature of a flat content.

For video, :func:`warping_error` measures how stable a sequence of outputs is along the inputs' motion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.adain.ops import calc_mean_std
from model.gatys import gram
from model.network import GATYS_CONTENT_LAYER, GATYS_STYLE_LAYERS, RELU4_1, STYLE_LAYERS, Encoder
from model.temporal import Motion, warp

__all__ = ["GatysScore", "QualityScore", "WarpingError", "content_distance", "gatys_score", "layout_similarity",
           "quality_score", "style_spread", "warping_error"]


@dataclass(frozen=True)
class _Distances:
    content: float  # relative to the content's own features, lower is closer
    style: float  # relative to the style's own statistics, lower is closer

    # The column titles of every table of these numbers: the two measures' style distances do not compare.
    CONTENT: ClassVar[str]
    STYLE: ClassVar[str]


@dataclass(frozen=True)
class QualityScore(_Distances):
    """AdaIN's measures: relu4_1 content distance, mean/std style distance."""

    CONTENT = "content distance (relu4_1)"
    STYLE = "style distance (mean/std, relu1_1..relu4_1)"


@dataclass(frozen=True)
class GatysScore(_Distances):
    """Gatys' measures: relu4_2 content distance, Gram style distance."""

    CONTENT = "content distance (relu4_2)"
    STYLE = "style distance (Gram, relu1_1..relu5_1)"

    @property
    def total(self) -> float:
        return self.content + self.style


def _same_size(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if image.shape[-2:] == like.shape[-2:]:
        return image
    return F.interpolate(image, size=like.shape[-2:], mode="bilinear", align_corners=False, antialias=True)


def _relative(a: torch.Tensor, target: torch.Tensor) -> float:
    return float((a - target).norm() / target.norm().clamp_min(1e-12))


@torch.inference_mode()
def quality_score(encoder: Encoder, result: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
                  style_layers: Sequence[str] = STYLE_LAYERS) -> QualityScore:
    """AdaIN's content (relu4_1) and style (mean/std over ``style_layers``, averaged) distances of ``result``."""
    result = _same_size(result, content)
    layers = (*style_layers, RELU4_1)
    out = encoder.features(result, layers)
    cont = encoder.features(content, (RELU4_1,))
    sty = encoder.features(style, style_layers)
    style_terms = []
    for name in style_layers:
        mean, std = calc_mean_std(out[name].float())
        s_mean, s_std = calc_mean_std(sty[name].float())
        style_terms.append(_relative(torch.cat([mean, std]), torch.cat([s_mean, s_std])))
    return QualityScore(content=_relative(out[RELU4_1].float(), cont[RELU4_1].float()),
                        style=sum(style_terms) / len(style_terms))


@torch.inference_mode()
def content_distance(encoder: Encoder, result: torch.Tensor, content: torch.Tensor) -> float:
    """:func:`quality_score`'s content distance (relu4_1) alone, for a result that has no style image to score."""
    features = [encoder.features(image, (RELU4_1,))[RELU4_1].float() for image in (_same_size(result, content),
                                                                                   content)]
    return _relative(*features)


@torch.inference_mode()
def style_spread(encoder: Encoder, images: Sequence[torch.Tensor], style_layers: Sequence[str] = STYLE_LAYERS
                 ) -> float:
    """How unlike one another ``images`` are in style: the mean over their pairs of :func:`quality_score`'s style
    distance (mean/std over ``style_layers``), each pair taken both ways so the measure is symmetric.

    It needs no style image, so it scores a model that renders only its own presets: one preset's outputs on
    different photos should spread far less than the photos themselves."""
    if len(images) < 2:
        raise ValueError("a spread needs at least two images")
    stats = []
    for image in images:
        features = encoder.features(image, style_layers)
        stats.append([torch.cat(calc_mean_std(features[name].float())) for name in style_layers])
    distances = [sum(_relative(a, b) for a, b in zip(stats[i], stats[j], strict=True)) / len(style_layers)
                 for i in range(len(stats)) for j in range(len(stats)) if i != j]
    return sum(distances) / len(distances)


@torch.inference_mode()
def gatys_score(encoder: Encoder, result: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
                style_layers: Sequence[str] = GATYS_STYLE_LAYERS,
                content_layer: str = GATYS_CONTENT_LAYER) -> GatysScore:
    """Gatys' content (``content_layer``) and Gram style (``style_layers``, averaged) distances of ``result``.

    ``encoder`` must reach the deepest of these layers (relu5_1 by default).
    """
    result = _same_size(result, content)
    out = encoder.features(result, (*style_layers, content_layer))
    cont = encoder.features(content, (content_layer,))
    sty = encoder.features(style, style_layers)
    style_terms = [_relative(gram(out[name].float()), gram(sty[name].float())) for name in style_layers]
    return GatysScore(content=_relative(out[content_layer].float(), cont[content_layer].float()),
                      style=sum(style_terms) / len(style_terms))


_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


@torch.inference_mode()
def layout_similarity(result: torch.Tensor, content: torch.Tensor, cells: int = 16) -> float:
    """How well ``result`` keeps ``content``'s picture seen from afar, in [-1, 1] (1: the same light and dark parts).

    Both images' luminance is averaged over ``cells`` blocks along the longer side (8 px at 128 px: a line or dot
    pattern averages out), and compared as SSIM compares structure and contrast: the blocks' correlation times
    ``2 s_r s_c / (s_r^2 + s_c^2)`` of their standard deviations, so a faint copy of the layout under a strong
    pattern scores low, and an overall tone change does not count. A content with no variation at that scale has
    no layout to keep: it scores 1 against a result with none either, else 0.
    """
    result = _same_size(result, content)
    h, w = content.shape[-2:]
    block = max(h, w) / cells
    size = (max(1, round(h / block)), max(1, round(w / block)))
    weights = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    a, b = (F.adaptive_avg_pool2d((image.float() * weights).sum(1, keepdim=True), size).flatten()
            for image in (result, content))
    a, b = a - a.mean(), b - b.mean()
    sa, sb = float(a.norm()), float(b.norm())
    if sa < 1e-9 or sb < 1e-9:
        return 1.0 if max(sa, sb) < 1e-9 else 0.0
    return float((a @ b) / (sa * sb)) * 2 * sa * sb / (sa * sa + sb * sb)


@dataclass(frozen=True)
class WarpingError:
    """Lai et al.'s warping error of a frame sequence (RGB in [0, 1]), averaged over consecutive pairs.

    ``mean_abs`` is the mean absolute difference per channel over the pixels visible in both frames; ``lai`` is the
    paper's measure, the mean over those pixels of the squared RGB distance (Lai et al., ECCV 2018, eq. 9)."""

    mean_abs: float
    lai: float
    pairs: int


def warping_error(frames: Sequence[np.ndarray | Image.Image], motions: Sequence[Motion]) -> WarpingError:
    """How far each frame is from the previous one moved along ``motions[t-1]`` (frame t-1 to t), where visible.

    The motion is the inputs' (known for synthetic clips, estimated otherwise), so a stable output scores 0."""
    if len(motions) != len(frames) - 1 or not motions:
        raise ValueError(f"need one motion per consecutive pair: {len(frames)} frames, {len(motions)} motions")
    arrays = [np.asarray(f.convert("RGB") if isinstance(f, Image.Image) else f, dtype=np.float32) / 255.0
              for f in frames]
    abs_terms, lai_terms = [], []
    for previous, current, motion in zip(arrays, arrays[1:], motions, strict=False):
        diff = current - warp(previous, motion.flow)
        visible = motion.visible
        if not visible.any():
            raise ValueError("a pair of frames has no pixel visible in both")
        abs_terms.append(float(np.abs(diff[visible]).mean()))
        lai_terms.append(float((diff[visible] ** 2).sum(-1).mean()))
    return WarpingError(float(np.mean(abs_terms)), float(np.mean(lai_terms)), len(motions))
