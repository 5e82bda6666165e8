"""Magenta's arbitrary style network (Ghiasi et al., BMVC 2017) run through ONNX Runtime.

A style image becomes a 100-d style vector (the style prediction network); the transfer network renders a content
image under a style vector. Everything the paper does with styles happens on these vectors: blends are weighted
averages, and the content/style trade-off interpolates from the content image's own style vector towards the style's
(``alpha * S(style) + (1 - alpha) * S(content)``, the paper's way of weakening a style).

Departures from the TF Hub usage (a 256x256 style, a content of the export's size), each deliberate:

- both graphs run at any size: their height and width are declared symbolic (:mod:`model.magenta.graphs`).
  Contents whose sides are not multiples of 4 are mirror-padded at the bottom and right (the two stride-2 convs
  would otherwise round the output up) and the output is cropped back, so it always has exactly the content's size.
  No tiling: the instance norms use whole-image statistics, which tiles would not share, and memory grows only about
  0.2 KB per pixel (measured peaks: 0.93 GB at 2048x2048, 3.5 GB at 4096x4096);
- ONNX Runtime's fused int8 global-average-pool refuses feature maps of 2^24 pixels or more (a 4096x4096 content).
  Such contents run in a second session with ONNX Runtime's basic optimisations only, which computes the graph's
  ops one by one (float pooling between the graph's own quantise/dequantise nodes). Its results are equally the
  graph's, but not bit-identical to the fused kernels': the network's int8 activations turn tiny differences into
  visible ones (measured at 384 and 1024 px: up to 50 levels at single pixels);
- style images are resized so that their shorter side is ``style_size`` and then snapped to multiples of 32 (at
  most 16 px per side), the whole image is used, not a centre crop. With every stride-2 input even, the graph's
  padding, fixed by the export for 256x256, is exactly TensorFlow's ``SAME`` padding at every size. A square style at
  ``style_size=256`` is exactly the TF Hub input. The network was trained on 256 px styles, and results at 256 are
  the crispest (at 512 strokes come out a little softer), which is why the family's default style size is 256; the
  content's own vector, which ``alpha`` starts from, is always taken at 256: it stands for the content, not for a
  style the caller sized;
- colour preservation (not part of the paper) uses the shared luminance (YIQ) and CORAL functions.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from model.color import coral, transfer_luminance
from model.images import image_to_pixels, pad_bottom_right, pixels_to_image, resize_shorter
from model.magenta.declaration import TRAINED_STYLE_SIZE
from model.magenta.graphs import PREDICT, TRANSFORM, read_graph, with_symbolic_size
from model.ort import make_session, session_device

__all__ = [
    "FUSED_POOL_LIMIT",
    "SIZE_MULTIPLE",
    "STYLE_DIM",
    "STYLE_MULTIPLE",
    "TRAINED_STYLE_SIZE",
    "MagentaEngine",
    "blend",
    "interpolate",
    "keep_chrominance",
    "prepare_style",
    "recolour_style",
]

#: Length of a style vector.
STYLE_DIM = 100
#: The style network downsamples five times by 2: style images are snapped to multiples of this.
STYLE_MULTIPLE = 32
#: The transfer network downsamples twice by 2: contents are padded to multiples of this.
SIZE_MULTIPLE = 4
#: Smallest padded content side the transfer network's mirror paddings accept (2 px at quarter resolution).
_MIN_SIDE = 8
#: ONNX Runtime's fused int8 global-average-pool (MLAS) refuses this many pixels per feature map or more.
FUSED_POOL_LIMIT = 1 << 24


def _to_nhwc(image: Image.Image) -> np.ndarray:
    """RGB image -> (1, H, W, 3) float32 in [0, 1], the graphs' layout."""
    return image_to_pixels(image)[None]


def _padded(pixels: np.ndarray) -> np.ndarray:
    """Mirror-pads (1, H, W, 3) at the bottom and right to multiples of :data:`SIZE_MULTIPLE` (at least 8 px)."""
    return pad_bottom_right(pixels, SIZE_MULTIPLE, _MIN_SIDE, axes=(1, 2))


def prepare_style(image: Image.Image, style_size: int) -> Image.Image:
    """The style network's input: shorter side resized to ``style_size`` (0 keeps it), sides snapped to multiples
    of 32 (at least 32)."""
    resized = resize_shorter(image.convert("RGB"), style_size)
    width, height = resized.size

    def snap(side: int) -> int:
        return max(STYLE_MULTIPLE, round(side / STYLE_MULTIPLE) * STYLE_MULTIPLE)

    target = (snap(width), snap(height))
    return resized if target == resized.size else resized.resize(target, Image.Resampling.BILINEAR)


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
    """CORAL colour preservation: the style image recoloured to the content's colour mean and covariance.

    The shared :func:`model.color.coral` follows the AdaIN reference, whose covariances are sums over pixels, not
    means: between images of different pixel counts it scales the result's contrast by sqrt(content/style pixels).
    The content's statistics are therefore taken from a copy resized to the style's size, so the counts are equal
    and the factor is 1 (a resize barely moves an image's colour mean and covariance).
    """
    target = content.convert("RGB").resize(style.size, Image.Resampling.BILINEAR)
    src = torch.from_numpy(_to_nhwc(style)[0]).permute(2, 0, 1)
    tgt = torch.from_numpy(_to_nhwc(target)[0]).permute(2, 0, 1)
    return pixels_to_image(coral(src, tgt).clamp(0, 1).permute(1, 2, 0).numpy())


def keep_chrominance(stylized: Image.Image, content: Image.Image) -> Image.Image:
    """Luminance colour preservation: the stylized image's luminance with the content's chrominance (YIQ)."""
    styl = torch.from_numpy(_to_nhwc(stylized)).permute(0, 3, 1, 2)
    cont = torch.from_numpy(_to_nhwc(content)).permute(0, 3, 1, 2)
    return pixels_to_image(transfer_luminance(styl, cont).clamp(0, 1)[0].permute(1, 2, 0).numpy())


class MagentaEngine:
    """The two bundled graphs in ONNX Runtime sessions; loading checks each file's pinned SHA-256.

    ``device``: ``auto`` (CUDA first when this onnxruntime build has it), ``cpu`` or ``cuda``; ``threads`` caps each
    session's intra-op threads (0 lets ONNX Runtime choose). Sessions are safe to call from several threads.
    """

    def __init__(self, *, device: str = "auto", threads: int = 0) -> None:
        self._device, self._threads = device, threads
        self._predict = make_session(with_symbolic_size(read_graph(PREDICT)), device=device, threads=threads)
        self._transform_graph = with_symbolic_size(read_graph(TRANSFORM))
        self._transform = make_session(self._transform_graph, device=device, threads=threads)
        self._unfused = None  # built on the first content too large for the fused pooling kernel
        self._lock = threading.Lock()
        self.device = session_device(self._transform)

    def style_vector(self, image: Image.Image) -> np.ndarray:
        """A style image prepared by :func:`prepare_style` -> its style vector, shape (100,), float32."""
        width, height = image.size
        if width % STYLE_MULTIPLE or height % STYLE_MULTIPLE:
            raise ValueError(f"style images must be multiples of {STYLE_MULTIPLE} px (prepare_style), got {width}x"
                             f"{height}")
        out = self._predict.run([PREDICT.output], {PREDICT.inputs[0]: _to_nhwc(image)})[0]
        return out.reshape(STYLE_DIM)

    def render(self, content: Image.Image, vector: np.ndarray) -> Image.Image:
        """The transfer network on ``content`` under ``vector``; the output has exactly the content's size."""
        pixels = _to_nhwc(content)
        _, height, width, _ = pixels.shape
        padded = _padded(pixels)
        feeds = {
            TRANSFORM.inputs[0]: padded,
            TRANSFORM.inputs[1]: np.asarray(vector, np.float32).reshape(1, 1, 1, STYLE_DIM),
        }
        session = self._transform if padded.shape[1] * padded.shape[2] < FUSED_POOL_LIMIT else self._unfused_session()
        out = session.run([TRANSFORM.output], feeds)[0]
        return pixels_to_image(out[0, :height, :width])

    def _unfused_session(self):  # -> onnxruntime.InferenceSession
        with self._lock:
            if self._unfused is None:
                self._unfused = make_session(self._transform_graph, device=self._device, threads=self._threads,
                                             fuse_quantized=False)
            return self._unfused
