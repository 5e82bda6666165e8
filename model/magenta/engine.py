"""Magenta's arbitrary style network (Ghiasi et al., BMVC 2017) run through ONNX Runtime.

A style image becomes a 100-d style vector (the style prediction network); the transfer network renders a content
image under a style vector. Everything the paper does with styles happens on these vectors: blends are weighted
averages and the content/style trade-off ``alpha`` interpolates from the content image's own style vector (the
paper's Sec. 5.3 / Fig. 8, ``alpha * S(style) + (1 - alpha) * S(content)``).

Departures from the TF Hub reference, each deliberate:

- content of any size runs at its own size (the transfer graph's height and width are declared symbolic, see
  :mod:`model.magenta.graphs`); sizes that are not multiples of 4 are mirror-padded to the next multiple (the two
  stride-2 convs would otherwise round the output up) and the output is cropped back, so it always has exactly the
  content's size. No tiling: the network's instance norms use whole-image statistics, so tiles would not agree,
  and memory grows only ~0.2 KB per pixel (measured: 0.9 GB peak at 2048x2048);
- style images are centre-cropped to a square before the resize to the graph's fixed 256x256, as TF Hub's example
  does, so a style is never squashed; the resize is PIL's antialiased bilinear rather than TF's aliasing one;
- colour preservation (not part of the paper) reuses the shared luminance (YIQ) and CORAL functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from model.color import coral, transfer_luminance
from model.magenta.graphs import PREDICT, TRANSFORM, read_graph, with_symbolic_size
from model.ort import make_session, session_device

__all__ = [
    "SIZE_MULTIPLE",
    "STYLE_DIM",
    "STYLE_SIZE",
    "MagentaEngine",
    "blend",
    "interpolate",
    "keep_chrominance",
    "recolour_style",
    "style_square",
]

#: Length of a style vector.
STYLE_DIM = 100
#: Side of the square the style prediction network takes (fixed in the graph).
STYLE_SIZE = 256
#: The transfer network downsamples twice by 2: inputs are padded to a multiple of this.
SIZE_MULTIPLE = 4
#: Smallest padded side the network's mirror paddings accept (a 3x3 mirror pad at 1/4 scale needs 2 px there).
_MIN_SIDE = 8


def _to_nhwc(image: Image.Image) -> np.ndarray:
    """RGB image -> (1, H, W, 3) float32 in [0, 1], the graphs' layout."""
    return np.asarray(image.convert("RGB"), dtype=np.float32)[None] / np.float32(255)


def _to_image(pixels: np.ndarray) -> Image.Image:
    """(H, W, 3) float in [0, 1] -> RGB image, rounding to the nearest level."""
    return Image.fromarray((pixels * 255 + 0.5).clip(0, 255).astype(np.uint8), mode="RGB")


def _padded(pixels: np.ndarray) -> np.ndarray:
    """Mirror-pads (1, H, W, 3) at the bottom and right to multiples of :data:`SIZE_MULTIPLE` (at least 8 px)."""
    _, height, width, _ = pixels.shape

    def target(side: int) -> int:
        return max(_MIN_SIDE, -(-side // SIZE_MULTIPLE) * SIZE_MULTIPLE)

    pad_h, pad_w = target(height) - height, target(width) - width
    if not pad_h and not pad_w:
        return pixels
    # ``symmetric`` (edge pixel repeated) is defined for any pad, even wider than a 1-px image; ``reflect`` is not.
    return np.pad(pixels, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")


def style_square(image: Image.Image) -> Image.Image:
    """The style network's input: the largest centred square, resized to 256x256."""
    return ImageOps.fit(image.convert("RGB"), (STYLE_SIZE, STYLE_SIZE), Image.Resampling.BILINEAR)


def blend(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of style vectors (weights >= 0 with a positive sum; they are normalised here)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(vectors) != len(w) or not len(w) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("blend needs one non-negative weight per vector and a positive sum")
    stacked = np.stack([np.asarray(v, dtype=np.float64).reshape(STYLE_DIM) for v in vectors])
    return (w / w.sum()) @ stacked


def interpolate(style: np.ndarray, content: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * style + (1 - alpha) * content``: the paper's content/style trade-off on style vectors."""
    return alpha * np.asarray(style, np.float64) + (1.0 - alpha) * np.asarray(content, np.float64)


def recolour_style(style: Image.Image, content: Image.Image) -> Image.Image:
    """CORAL colour preservation: the style image recoloured to the content's colour mean and covariance."""
    src = torch.from_numpy(_to_nhwc(style)[0]).permute(2, 0, 1)
    tgt = torch.from_numpy(_to_nhwc(content)[0]).permute(2, 0, 1)
    return _to_image(coral(src, tgt).clamp(0, 1).permute(1, 2, 0).numpy())


def keep_chrominance(stylized: Image.Image, content: Image.Image) -> Image.Image:
    """Luminance colour preservation: the stylized image's luminance with the content's chrominance (YIQ)."""
    styl = torch.from_numpy(_to_nhwc(stylized)).permute(0, 3, 1, 2)
    cont = torch.from_numpy(_to_nhwc(content)).permute(0, 3, 1, 2)
    return _to_image(transfer_luminance(styl, cont).clamp(0, 1)[0].permute(1, 2, 0).numpy())


class MagentaEngine:
    """The two bundled graphs in ONNX Runtime sessions; loading checks each file's pinned SHA-256.

    ``device``: ``auto`` (CUDA first when this onnxruntime build has it), ``cpu`` or ``cuda``; ``threads`` caps each
    session's intra-op threads (0 lets ONNX Runtime choose). Sessions are safe to call from several threads.
    """

    def __init__(self, *, device: str = "auto", threads: int = 0) -> None:
        self._predict = make_session(read_graph(PREDICT), device=device, threads=threads)
        self._transform = make_session(with_symbolic_size(read_graph(TRANSFORM)), device=device, threads=threads)
        self.device = session_device(self._transform)

    def style_vector(self, image: Image.Image) -> np.ndarray:
        """A style image (any size) -> its style vector, shape (100,), float32."""
        out = self._predict.run([PREDICT.output], {PREDICT.inputs[0]: _to_nhwc(style_square(image))})[0]
        return out.reshape(STYLE_DIM)

    def render(self, content: Image.Image, vector: np.ndarray) -> Image.Image:
        """The transfer network on ``content`` under ``vector``; the output has exactly the content's size."""
        pixels = _to_nhwc(content)
        _, height, width, _ = pixels.shape
        feeds = {
            TRANSFORM.inputs[0]: _padded(pixels),
            TRANSFORM.inputs[1]: np.asarray(vector, np.float32).reshape(1, 1, 1, STYLE_DIM),
        }
        out = self._transform.run([TRANSFORM.output], feeds)[0]
        return _to_image(out[0, :height, :width])
