"""A tiny fake model family, declared as a real one is (model/declaration.py), for tests of the seam and the model
repository: its built-in model paints the style's mean colour; its trained models mix in a tint from their one file."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from model.declaration import Family, Option, TrainedModel, TrainedModels
from model.errors import Unavailable
from model.family import (
    BatchItem,
    Capabilities,
    ColorMode,
    ModelInfo,
    StyleCode,
    StyleModel,
    StyleSource,
    StyleSpec,
    StylizeOptions,
    check_request,
    code_identity,
    require_producer,
)
from model.images import resize_shorter
from model.network import StopCheck

__all__ = ["FLAT", "FLAT_DEFAULTS", "TINT_FILE", "FlatColour"]


#: The fake family's own defaults: what requests that leave these options unset get from its models.
FLAT_DEFAULTS = StylizeOptions(style_size=16, alpha=0.75)


class FlatColour:
    """A fake family: the code is the style's mean colour; stylizing paints the content that colour (times alpha).
    No native masks, no colour preservation, no tiling, no batching, no presets: what a minimal family declares. A
    trained model of it carries a tint (its one weight file) that it mixes half and half into every style's colour."""

    capabilities = Capabilities(colors=frozenset({ColorMode.NONE}))
    presets = ()

    def __init__(self, name: str = "flat", version: str = "v1", seed: int = 0,
                 tint: tuple[int, int, int] | None = None, weights: dict[str, str] | None = None) -> None:
        digest = f"{seed:064x}"
        self.info = ModelInfo(name, "flat", version, weights or {"palette": digest}, {"palette": "tests"},
                              defaults=FLAT_DEFAULTS)
        self.code_identity = code_identity("flat", digest)
        self.seed, self.tint = seed, tint

    def check(self, styles: Sequence[StyleSpec], options: StylizeOptions) -> None:
        check_request(self.info, self.capabilities, styles, options)

    def encode_style(self, image: Image.Image, *, style_size: int | None = None,
                     should_stop: StopCheck | None = None) -> StyleCode:
        size = self.info.defaults.style_size if style_size is None else style_size
        resized = resize_shorter(image.convert("RGB"), size)
        rgb = torch.from_numpy(np.asarray(resized, dtype=np.float32).reshape(-1, 3).mean(axis=0))
        return StyleCode(self.code_identity, {"rgb": rgb}, resized.width, resized.height)

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                      ) -> list[Image.Image]:
        out = []
        for item in items:
            weights = check_request(self.info, self.capabilities, [s.spec for s in item.styles], item.options)
            colour = sum(w * self._code(s, item.options).tensors["rgb"] for w, s in zip(weights, item.styles,
                                                                                        strict=True))
            if self.tint is not None:
                colour = (colour + torch.tensor(self.tint, dtype=torch.float32)) / 2
            content = np.asarray(resize_shorter(item.content, item.options.content_size), dtype=np.float32)
            a = item.options.alpha
            pixels = content * (1 - a) + np.asarray(colour, dtype=np.float32) * a
            out.append(Image.fromarray(np.round(pixels).clip(0, 255).astype(np.uint8), "RGB"))
        return out

    def _code(self, style: StyleSource, options: StylizeOptions) -> StyleCode:
        if style.code is not None:
            require_producer(style.code, self.code_identity, self.info.name)
            return style.code
        assert style.image is not None
        return self.encode_style(style.image, style_size=options.style_size)


# --- the fake family's declaration: everything the server learns about it -------------------------------------------

TINT_FILE = "tint.json"


def _flat_info(trained: TrainedModel, builtins: Sequence[StyleModel]) -> ModelInfo:
    if not builtins:
        raise Unavailable("trained flat models need the built-in flat model")
    return ModelInfo(trained.name, "flat", trained.name, dict(trained.weights), {"tint": str(trained.folder)},
                     metadata=dict(trained.metadata), defaults=FLAT_DEFAULTS)


def _flat_load(trained: TrainedModel, builtins: Sequence[StyleModel]) -> FlatColour:
    tint = json.loads((trained.folder / TINT_FILE).read_text())["rgb"]
    info = _flat_info(trained, builtins)
    return FlatColour(info.name, info.version, seed=builtins[0].seed, tint=tuple(tint), weights=dict(info.weights))


FLAT = Family(
    name="flat",
    build=lambda context: [FlatColour(version=f"seed{context.options['flat_seed']}",
                                      seed=context.options["flat_seed"])],
    options=(Option("flat_seed", 0, "the flat family's palette seed"),),
    defaults=FLAT_DEFAULTS,
    trained=TrainedModels(files={"tint": TINT_FILE}, info=_flat_info, load=_flat_load),
)
