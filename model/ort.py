"""ONNX Runtime sessions: which execution providers to ask for, and one way to build a session.

ONNX Runtime falls back to the CPU provider silently when a requested provider cannot load, so the provider a
session really uses is read back from the session (``session_device``), never assumed from the request.
"""

from __future__ import annotations

__all__ = ["execution_providers", "make_session", "session_device"]

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"


def execution_providers(device: str = "auto") -> list[str]:
    """``auto`` -> CUDA first when this onnxruntime build has it, then CPU; ``cpu``; ``cuda`` (an error without it)."""
    import onnxruntime as ort  # lazily: importing ``model`` must not pay for onnxruntime

    available = ort.get_available_providers()
    if device == "auto":
        return [_CUDA, _CPU] if _CUDA in available else [_CPU]
    if device == "cpu":
        return [_CPU]
    if device.startswith("cuda"):
        if _CUDA not in available:
            raise ValueError("device cuda requested but this onnxruntime build has no CUDAExecutionProvider")
        return [_CUDA, _CPU]
    raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")


def make_session(model: bytes, *, device: str = "auto", threads: int = 0, fuse_quantized: bool = True):
    """A session (``onnxruntime.InferenceSession``) for a serialised ONNX model.

    ``threads`` caps intra-op threads (0 lets ONNX Runtime choose). ``fuse_quantized=False`` keeps ONNX Runtime to
    its basic optimisations: quantise/dequantise pairs are not fused into int8 kernels, so every op of the graph runs
    as written (needed where a fused kernel has limits the plain ops lack).
    """
    import onnxruntime as ort

    if threads < 0:
        raise ValueError(f"threads must not be negative, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # these graphs are chains; a second pool would only compete for cores
    # ONNX Runtime's workers otherwise spin for a while after each run, taking the cores that the server's decode,
    # encode, stream stabiliser and other workers need next: on 2 shared cores a stabilised Magenta frame cost 1.3x
    # per-frame's with spinning and 1.24x without, and Magenta itself ran faster.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if fuse_quantized else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    )
    return ort.InferenceSession(model, options, providers=execution_providers(device))


def session_device(session) -> str:
    """``cuda`` or ``cpu``: where the session's first (preferred, actually loaded) provider runs."""
    return "cuda" if session.get_providers()[0] == _CUDA else "cpu"
