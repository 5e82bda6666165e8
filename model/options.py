"""What a request may ask of a model and what a model can do: request options and capabilities.

Kept free of torch so that a family's declaration (:mod:`model.declaration`), which the server reads before it starts
torch, can state its defaults and limits with these types. :mod:`model.family` re-exports them beside the protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Capabilities", "ColorMode", "MaskMode", "StylizeOptions"]


class ColorMode(enum.StrEnum):
    """How the content's colours are preserved."""

    NONE = "none"
    CORAL = "coral"  # recolour the style image to the content's colour statistics before encoding it
    LUMINANCE = "luminance"  # keep the content's chrominance (YIQ); take the stylized luminance


class MaskMode(enum.StrEnum):
    """How a family honours per-style masks."""

    NATIVE = "native"  # inside the network (AdaIN: each region's own statistics)
    COMPOSITED = "composited"  # model.masks renders each masked style alone and blends the outputs by the masks


@dataclass(frozen=True)
class StylizeOptions:
    """A request's options. The field defaults are the generic ones; a family declares its own (its
    ``Family.defaults``, shown on each model's ``ModelInfo.defaults``), which requests that leave an option unset get.
    """

    alpha: float = 1.0  # content/style trade-off in [0, 1]; 1 is full style
    color: ColorMode = ColorMode.NONE  # colour preservation
    content_size: int = 0  # shorter side of the content, 0 keeps it
    style_size: int = 512  # shorter side of style images, 0 keeps them (AdaIN's reference default is 512)
    tile_size: int = 0  # process content larger than this (px per side) in tiles; 0 never tiles


@dataclass(frozen=True)
class Capabilities:
    """What a family supports beyond the common options, and its limits; the request check refuses the rest by name."""

    masks: MaskMode = MaskMode.COMPOSITED  # per-style spatial masks: inside the network, or by compositing outputs
    style_images: bool = True  # encodes arbitrary style images; False: only its built-in presets
    colors: frozenset[ColorMode] = frozenset(ColorMode)  # colour preservation modes
    tiling: bool = False  # tile_size > 0 processes large contents in tiles
    batching: bool = False  # stylize_batch runs several same-size items in one pass (pays on GPUs)
    tile_multiple: int = 8  # tile_size must be a multiple of this when tiling is supported
    min_side: int = 1  # shortest side (px) a content or style image may have after resizing
