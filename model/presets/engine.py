"""The bundled 26-style network (``multistyle26.onnx``) in ONNX Runtime, and where its file comes from.

Read from the graph (``onnx.load``): opset 17, exported by PyTorch 2.4.1.

- inputs: ``image`` (1, 3, h, w) float32 RGB in [0, 1] (NCHW; no normalisation inside: the first op is a 4-px
  reflection pad before a 9x9 conv) and ``style_weights`` (26,) float32;
- output: ``stylized`` (1, 3, h, w), a sigmoid, so in (0, 1);
- the network: a 9x9 conv, two stride-2 3x3 convs, six residual blocks, two nearest x2 upsamplings each before a
  3x3 conv, a 9x9 conv; 32 channels at most; every conv is reflection-padded and followed by conditional instance
  normalisation (Dumoulin, Shlens & Kudlur, ICLR 2017): each layer holds 26 (gamma, beta) rows, and the graph takes
  ``style_weights @ gamma`` and ``style_weights @ beta``, so a convex combination of one-hot vectors is the paper's
  style blend. The weights are not normalised inside: :class:`PresetsEngine` takes ones that sum to 1.

Sizes: any height and width (both axes are symbolic). Contents are mirror-padded at the bottom and right to
multiples of 4 (the two stride-2 convs would otherwise change the size) and at least 8 px (the reflection pads at
quarter resolution need 2 px), and the output is cropped back. No tiling: the instance norms use whole-image
statistics, which tiles would not share.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from model.images import image_to_pixels, pad_bottom_right
from model.ort import make_session, session_device
from model.pins import pinned, read_packaged

__all__ = ["MULTISTYLE26", "NUM_STYLES", "PresetsEngine"]

#: Styles trained into the network (the length of ``style_weights``).
NUM_STYLES = 26
#: The two stride-2 convs: contents are padded to multiples of this.
SIZE_MULTIPLE = 4
#: Smallest padded side the reflection pads at quarter resolution accept.
_MIN_SIDE = 8

#: The pinned file (``presets_multistyle26`` in model/weights_pins.json).
MULTISTYLE26 = pinned("presets_multistyle26")
_IMAGE, _STYLE_WEIGHTS, _OUTPUT = "image", "style_weights", "stylized"  # the graph's tensor names


class PresetsEngine:
    """The network in one ONNX Runtime session; loading checks the file's pinned SHA-256. Safe to call from several
    threads. ``device``: ``auto`` (CUDA first when this onnxruntime build has it), ``cpu`` or ``cuda``; ``threads``
    caps the session's intra-op threads (0 lets ONNX Runtime choose)."""

    def __init__(self, *, device: str = "auto", threads: int = 0) -> None:
        self._session = make_session(read_packaged(MULTISTYLE26), device=device, threads=threads)
        self.device = session_device(self._session)

    def render(self, content: Image.Image, weights: np.ndarray) -> torch.Tensor:
        """``content`` under the style ``weights`` (26 values summing to 1) -> (1, 3, H, W) in [0, 1] at exactly the
        content's size."""
        weights = np.asarray(weights, dtype=np.float32).reshape(NUM_STYLES)
        pixels = np.ascontiguousarray(image_to_pixels(content).transpose(2, 0, 1)[None])  # (1, 3, H, W)
        _, _, height, width = pixels.shape
        feeds = {_IMAGE: pad_bottom_right(pixels, SIZE_MULTIPLE, _MIN_SIDE, axes=(2, 3)), _STYLE_WEIGHTS: weights}
        out = self._session.run([_OUTPUT], feeds)[0]
        return torch.from_numpy(np.ascontiguousarray(out[:, :, :height, :width]))
