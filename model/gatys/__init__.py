"""The Gatys family (Gatys, Ecker & Bethge, CVPR 2016): stylization by optimising the image against VGG19 losses."""

from model.gatys.optimise import (
    MIN_SIDE,
    ContentLoss,
    GatysCheckpoint,
    GatysOptions,
    GatysProgress,
    GramMeanStdStyleLoss,
    GramStyleLoss,
    MeanStdStyleLoss,
    SpectrumLoss,
    TVLoss,
    gram,
    layout,
    scale_sizes,
    stylize_gatys,
)

__all__ = [
    "MIN_SIDE",
    "ContentLoss",
    "GatysCheckpoint",
    "GatysOptions",
    "GatysProgress",
    "GramMeanStdStyleLoss",
    "GramStyleLoss",
    "MeanStdStyleLoss",
    "SpectrumLoss",
    "TVLoss",
    "gram",
    "layout",
    "scale_sizes",
    "stylize_gatys",
]
