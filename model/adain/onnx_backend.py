"""The AdaIN networks as ONNX graphs, and as ONNX Runtime sessions with the calling convention of ``model.adain.fast``.

The graphs are traced from the plain official-layout modules (:class:`~model.network.Encoder`,
:class:`~model.network.Decoder`), not from :mod:`model.adain.fast`, whose in-place border fix-ups do not trace into
ONNX; ONNX Runtime fuses conv + ReLU itself. The TorchScript exporter (``dynamo=False``) is used because the
``torch.export`` one needs ``onnxscript``, which this project does not install.

:class:`OrtEncoder` and :class:`OrtDecoder` stand where :class:`~model.adain.fast.FastEncoder` and
:class:`~model.adain.fast.FastDecoder` stand in :class:`~model.adain.stylizer.AdaINModel`: same methods, same tensors
in and out, so statistics, masks, colour, tiling and batching stay the one torch implementation. A session run is one
whole network; the stop check is asked before and after it (ONNX Runtime cannot poll a callback between layers).

Tensors cross into ONNX Runtime without copies through I/O binding: the input's memory is read in place and the
output is written straight into a torch tensor of the size the network produces (known from its stride), on the
device the session really runs on (``model.ort.session_device``: CUDA when the provider loaded, else CPU).
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from model.errors import Cancelled
from model.network import RELU4_1, Decoder, Encoder, StopCheck

__all__ = ["FEATURES", "IMAGE", "OPSET", "STRIDE", "OrtDecoder", "OrtEncoder", "cpu_copy", "decoder_onnx",
           "encoder_onnx", "ort_networks", "to_onnx"]

#: Input and output names of the exported graphs (:mod:`model.export` writes them).
IMAGE = "image"
FEATURES = "features"
#: The encoder to relu4_1 halves the size three times with ceil-mode pools; the decoder doubles it three times.
STRIDE = 8
FEATURE_CHANNELS = 512
#: ONNX opset of the exported graphs: 17 is read by ONNX Runtime, onnx2tf and the current mobile converters.
OPSET = 17


def cpu_copy(module: nn.Module) -> nn.Module:
    """A float32 CPU copy to trace: the model's own modules may live on a GPU in reduced precision."""
    return copy.deepcopy(module).to("cpu", torch.float32).eval()


def to_onnx(module: nn.Module, example: torch.Tensor, input_name: str, output_name: str) -> bytes:
    """Traces ``module`` on ``example`` into ONNX with symbolic batch, height and width."""
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The legacy exporter announces its deprecation, and the tracer warns about the Python-level checks in the
        # modules (the input normalisation's identity test), which are constant per model: both are expected.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=[input_name],
                          output_names=[output_name], dynamic_axes={input_name: axes, output_name: axes},
                          do_constant_folding=True)
    return buffer.getvalue()


def encoder_onnx(encoder: Encoder) -> bytes:
    """The encoder to its depth (relu4_1 for AdaIN) as ONNX: ``image`` -> ``features``."""
    return to_onnx(cpu_copy(encoder), torch.rand(1, 3, 64, 64), IMAGE, FEATURES)


def decoder_onnx(decoder: Decoder) -> bytes:
    """The AdaIN decoder as ONNX: ``features`` -> ``image``."""
    return to_onnx(cpu_copy(decoder), torch.rand(1, 512, 8, 8), FEATURES, IMAGE)


def ort_networks(encoder: Encoder, decoder: Decoder, device: torch.device) -> tuple[OrtEncoder, OrtDecoder]:
    """Both networks exported and loaded into sessions on ``device`` (CUDA provider for ``cuda``, when present)."""
    from model.ort import make_session  # lazily: onnxruntime loads only for models that use it

    where = "cuda" if device.type == "cuda" else "cpu"
    return (OrtEncoder(make_session(encoder_onnx(encoder), device=where)),
            OrtDecoder(make_session(decoder_onnx(decoder), device=where)))


def _stop(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("stopped between networks")


class _Graph:
    """A one-input, one-output float32 NCHW graph run in place on torch tensors."""

    def __init__(self, session, input_name: str, output_name: str) -> None:  # session: onnxruntime.InferenceSession
        from model.ort import session_device

        self._session = session
        self._input, self._output = input_name, output_name
        self._device = torch.device(session_device(session))

    def run(self, x: torch.Tensor, out_shape: tuple[int, ...]) -> torch.Tensor:
        """Runs the graph on ``x``; the result is on ``x``'s device, float32."""
        inp = x.to(self._device, torch.float32).contiguous()  # NCHW: channels_last inputs are copied once
        out = torch.empty(out_shape, dtype=torch.float32, device=self._device)
        index = self._device.index or 0
        binding = self._session.io_binding()
        binding.bind_input(self._input, self._device.type, index, np.float32, tuple(inp.shape), inp.data_ptr())
        binding.bind_output(self._output, self._device.type, index, np.float32, out_shape, out.data_ptr())
        self._session.run_with_iobinding(binding)
        return out.to(x.device)


class OrtEncoder:
    """The encoder to relu4_1 as an ONNX Runtime session: ``features`` like :class:`~model.adain.fast.FastEncoder`."""

    depth = RELU4_1

    def __init__(self, session) -> None:  # onnxruntime.InferenceSession of model.export.encoder_onnx
        self._graph = _Graph(session, IMAGE, FEATURES)

    def features(self, x: torch.Tensor, names: Iterable[str], should_stop: StopCheck | None = None
                 ) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> ``{"relu4_1": (B, 512, ceil(H/8), ceil(W/8))}``; only relu4_1 is exported."""
        names = set(names)
        if names != {RELU4_1}:
            raise ValueError(f"the ONNX encoder computes only {RELU4_1}, not {sorted(names)}")
        _stop(should_stop)
        batch, _, height, width = x.shape
        out = self._graph.run(x, (batch, FEATURE_CHANNELS, -(-height // STRIDE), -(-width // STRIDE)))
        _stop(should_stop)
        return {RELU4_1: out}


class OrtDecoder:
    """The AdaIN decoder as an ONNX Runtime session, callable like :class:`~model.adain.fast.FastDecoder`."""

    def __init__(self, session) -> None:  # onnxruntime.InferenceSession of model.export.decoder_onnx
        self._graph = _Graph(session, FEATURES, IMAGE)

    def __call__(self, feat: torch.Tensor, should_stop: StopCheck | None = None) -> torch.Tensor:
        """(B, 512, h, w) -> (B, 3, 8h, 8w), unclamped."""
        _stop(should_stop)
        batch, _, height, width = feat.shape
        out = self._graph.run(feat, (batch, 3, height * STRIDE, width * STRIDE))
        _stop(should_stop)
        return out
