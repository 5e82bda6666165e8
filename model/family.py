"""The seam between the server and every model family: request types, style codes and the ``StyleModel`` protocol.

A family (``model/adain/``, ``model/magenta/``, ...) turns a style image into an opaque :class:`StyleCode` and renders
contents under weighted codes. The server stores, caches and batches codes without looking inside them; a code
carries the identity of what produced it (``producer``), so a stored or cached code is never used with a model that
cannot read it (:class:`~model.errors.IncompatibleModelError`). Request rules live here once
(:func:`check_request`); each family adds what it lacks through its :class:`Capabilities`, so an option a family
does not support is refused by name instead of being silently ignored. The options and capabilities themselves live in
:mod:`model.options` (free of torch) and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import torch
from PIL import Image
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from model.errors import IncompatibleModelError, InvalidOptionError
from model.network import StopCheck
from model.options import Capabilities, ColorMode, MaskMode, StylizeOptions

__all__ = [
    "BatchItem",
    "Capabilities",
    "ColorMode",
    "MaskMode",
    "ModelInfo",
    "Preset",
    "StyleCode",
    "StyleModel",
    "StyleSource",
    "StyleSpec",
    "StylizeOptions",
    "check_request",
    "code_identity",
    "require_producer",
]


def code_identity(family: str, *weight_sha256: str) -> str:
    """The producer string of codes made from these weights: ``family:`` and 16 hex digits of their hashes.

    Two models share codes exactly when their identities are equal (e.g. AdaIN decoders on one encoder)."""
    digest = hashlib.sha256("\n".join(weight_sha256).encode()).hexdigest()[:16]
    return f"{family}:{digest}"


@dataclass(frozen=True)
class StyleCode:
    """A style as one model family encodes it (AdaIN: relu4_1 mean/std; Magenta: a 100-d vector). Opaque to callers.

    ``tensors`` are CPU float32; ``width``/``height`` are the style image's size as encoded."""

    producer: str  # code_identity() of the model that made it
    tensors: Mapping[str, torch.Tensor]
    width: int
    height: int

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def to_bytes(self) -> bytes:
        meta = {"producer": self.producer, "width": str(self.width), "height": str(self.height)}
        return save_safetensors({k: v.contiguous() for k, v in self.tensors.items()}, metadata=meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> StyleCode:
        meta = _safetensors_metadata(data)
        return cls(meta["producer"], load_safetensors(data), int(meta["width"]), int(meta["height"]))


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors buffer: an 8-byte little-endian header length, then a JSON header."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]).get("__metadata__", {})


def require_producer(code: StyleCode, identity: str, model: str) -> None:
    """Refuses a code another model made (its tensors would be meaningless here)."""
    if code.producer != identity:
        raise IncompatibleModelError(
            f"a style code made by {code.producer!r} cannot be used with model {model!r} ({identity}); "
            "re-encode the style"
        )


@dataclass(frozen=True)
class StyleSource:
    """One style of a request: an image, or its code, or both; a blend weight; an optional mask."""

    image: Image.Image | None = None
    code: StyleCode | None = None
    weight: float = 1.0
    mask: Image.Image | None = None  # grayscale; white is where this style applies
    preset: bool = False  # ``code`` is one of the model's built-in presets (:class:`Preset`)

    @property
    def spec(self) -> StyleSpec:
        return StyleSpec("image" if self.image is not None else "code" if self.code is not None else "none",
                         self.weight, self.mask is not None, self.preset)


@dataclass(frozen=True)
class StyleSpec:
    """What a style of a request is, before its pixels are decoded: enough to check the request before it queues."""

    source: Literal["image", "code", "none"]
    weight: float = 1.0
    masked: bool = False
    preset: bool = False  # one of the model's built-in presets (its code comes with the model, not from an image)


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch: its content, styles and options."""

    content: Image.Image
    styles: Sequence[StyleSource]
    options: StylizeOptions = field(default_factory=StylizeOptions)


@dataclass(frozen=True)
class ModelInfo:
    """What a served model is: its names, the hashes and origin of its weights, and where it runs."""

    name: str  # what requests use, unique on a server
    family: str  # e.g. "adain", "magenta"
    version: str  # addresses the model as "family/version"
    weights: Mapping[str, str]  # role (e.g. "encoder", "decoder") -> SHA-256 of the weights
    provenance: Mapping[str, str]  # role -> where the weights came from (a path, a package, "random(seed=0)")
    untrained: bool = False  # random weights: outputs are not real stylizations
    device: str = "cpu"
    dtype: str = "float32"
    metadata: Mapping[str, str] = field(default_factory=dict)
    # What requests that leave an option unset get from this model: its family's declared defaults
    # (model.declaration.Family.defaults), e.g. the style size the network was trained at.
    defaults: StylizeOptions = field(default_factory=StylizeOptions)

    @property
    def address(self) -> str:
        return f"{self.family}/{self.version}"


@dataclass(frozen=True)
class Preset:
    """A style trained into a model's weights: it has no image, its code comes with the model, and it is read-only.

    Servers list presets beside registered styles; ``style_id`` is stable across releases and never 32 hex digits
    (a registered style's id), so the two kinds cannot collide."""

    style_id: str
    display_name: str
    code: StyleCode


@runtime_checkable
class StyleModel(Protocol):
    """What the server needs of a model. Implementations are safe to call from several inference threads."""

    info: ModelInfo
    capabilities: Capabilities
    presets: Sequence[Preset]  # the styles built into the weights (most families have none)

    @property
    def code_identity(self) -> str:
        """The ``producer`` of this model's codes; models with equal identities share codes."""
        ...

    def check(self, styles: Sequence[StyleSpec], options: StylizeOptions) -> None:
        """Raises InvalidOptionError (naming the option, and the model when it lacks the option) or returns."""
        ...

    def encode_style(self, image: Image.Image, *, style_size: int | None = None,
                     should_stop: StopCheck | None = None) -> StyleCode:
        """A style image's code, to store and reuse; ``style_size`` None is the model's default
        (``info.defaults.style_size``)."""
        ...

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                      ) -> list[Image.Image]:
        """Renders each item; each result has exactly its (resized) content's size."""
        ...


def _unsupported(option: str, info: ModelInfo, what: str) -> InvalidOptionError:
    return InvalidOptionError(option, f"model {info.name!r} (family {info.family}) does not support {what}")


def check_request(info: ModelInfo, capabilities: Capabilities, styles: Sequence[StyleSpec],
                  options: StylizeOptions) -> list[float]:
    """The request rules shared by every family; returns the style weights normalised to sum 1."""
    if not isinstance(options.alpha, (int, float)) or not 0.0 <= options.alpha <= 1.0:
        raise InvalidOptionError("alpha", f"must be in [0, 1], got {options.alpha!r}")
    if not isinstance(options.color, ColorMode):
        raise InvalidOptionError("preserve_color", f"must be one of {', '.join(m.value for m in ColorMode)}")
    if options.color not in capabilities.colors:
        raise _unsupported("color_preservation", info, f"colour preservation {options.color.value!r}")
    for name in ("content_size", "style_size", "tile_size"):
        if getattr(options, name) < 0:
            raise InvalidOptionError(name, "must not be negative")
    if options.tile_size and not capabilities.tiling:
        raise _unsupported("tile_size", info, "tiling")
    if options.tile_size % capabilities.tile_multiple:
        raise InvalidOptionError("tile_size", f"must be a multiple of {capabilities.tile_multiple}")
    if not styles:
        raise InvalidOptionError("styles", "at least one style is required")
    for i, style in enumerate(styles):
        if style.source == "none":
            raise InvalidOptionError(f"styles[{i}]", "needs an image or a style code")
        if options.color is ColorMode.CORAL and style.source != "image":
            raise InvalidOptionError(f"styles[{i}]", "CORAL colour preservation needs the style image")
        if not math.isfinite(style.weight) or style.weight < 0:
            raise InvalidOptionError(f"styles[{i}].weight", f"must be a finite number >= 0, got {style.weight!r}")
        if not capabilities.style_images and not style.preset:
            raise _unsupported(f"styles[{i}]", info, "style images (inline or registered); it renders only its "
                               "built-in presets, which ListStyles lists with this model")
    total = sum(style.weight for style in styles)
    if total <= 0:
        raise InvalidOptionError("styles.weight", "at least one style weight must be positive")
    return [style.weight / total for style in styles]
