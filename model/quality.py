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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.adain.ops import calc_mean_std
from model.gatys import gram
from model.network import GATYS_CONTENT_LAYER, GATYS_STYLE_LAYERS, RELU4_1, STYLE_LAYERS, Encoder

__all__ = ["GatysScore", "QualityScore", "gatys_score", "quality_score"]


@dataclass(frozen=True)
class QualityScore:
    """AdaIN's measures: relu4_1 content distance, mean/std style distance (both relative, lower is closer)."""

    content: float
    style: float


@dataclass(frozen=True)
class GatysScore:
    """Gatys' measures: relu4_2 content distance, Gram style distance (both relative, lower is closer)."""

    content: float
    style: float

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
