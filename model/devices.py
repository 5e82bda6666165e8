"""Device and precision choice. ``auto`` picks CUDA when present; reduced precision is for CUDA only."""

from __future__ import annotations

import torch

__all__ = ["dtype_name", "select_device", "select_dtype"]

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def select_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device cuda requested but no CUDA device is available")
        return torch.device(name)
    raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")


def select_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """``auto`` is fp16 on CUDA (convs and AdaIN statistics are well within its range) and fp32 on CPU.

    Reduced precision is refused on CPU: CPU kernels for fp16 are slow and bf16 loses visible accuracy.
    """
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in _DTYPES:
        raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    dtype = _DTYPES[precision]
    if dtype != torch.float32 and device.type != "cuda":
        raise ValueError(f"precision {precision} is only supported on CUDA; use fp32 on {device.type}")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
