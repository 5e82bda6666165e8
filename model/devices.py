"""Device and precision choice.

``auto`` picks CUDA when present. Precision ``auto`` is float16 on CUDA; on a CPU it is bfloat16 where the instruction
set computes bfloat16 natively, float32 elsewhere. Natively means what oneDNN (torch's CPU convolutions) runs in
hardware: on x86 the AVX512_BF16 dot products (Intel Cooper Lake and Sapphire Rapids on, AMD Zen 4 on) or AMX-BF16
tiles (Sapphire Rapids on); on Arm the BF16 extension's BFDOT/BFMMLA (Neoverse V1/N2, Graviton 3 on), which is the
one feature torch checks there. A CPU with AVX-512 but neither (Skylake, Ice Lake) gets bfloat16 from oneDNN by
conversion, 3-4x slower than float32 by oneDNN's own account; an AVX2 CPU gets torch's generic convolution, which is
tens of times slower. The features come from the kernel (``/proc/cpuinfo``), never from the model name; where they
cannot be read (not Linux) the choice is float32.

Reduced precision touches only the convolutions: every caller keeps statistics, losses and colour transforms in
float32 (``model/adain/stylizer.py``, ``model/adain/train.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["NATIVE_BF16_FEATURES", "Precision", "choose_precision", "cpu_features", "dtype_name", "native_bf16",
           "select_device", "select_dtype"]

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: CPU features (as ``/proc/cpuinfo`` names them: x86 ``flags``, Arm ``Features``) that compute bfloat16 natively.
NATIVE_BF16_FEATURES = ("amx_bf16", "avx512_bf16", "bf16")
_LACKS = "this CPU lacks native bfloat16 (avx512_bf16, amx_bf16, Arm bf16)"


@dataclass(frozen=True)
class Precision:
    """What the convolutions compute in, and why (one clause, for the start-up log)."""

    dtype: torch.dtype
    reason: str
    # bfloat16 asked for on a CPU without native bfloat16: it works, but slower than float32
    slower_than_float32: bool = False

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)


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


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature names as the kernel lists them (x86 ``flags``, Arm ``Features``); empty when the
    file cannot be read (not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16(features: Iterable[str]) -> str | None:
    """The feature that gives this CPU native bfloat16 arithmetic, or None; torch must also have oneDNN, which is
    what runs bfloat16 convolutions on those instructions."""
    found = set(features)
    if not torch.backends.mkldnn.is_available():
        return None
    return next((name for name in NATIVE_BF16_FEATURES if name in found), None)


def choose_precision(device: torch.device, precision: str = "auto", *,
                     features: Iterable[str] | None = None) -> Precision:
    """The dtype ``precision`` (``auto``, ``fp32``, ``fp16`` or ``bf16``) means on ``device``, with the reason.

    ``features`` are the CPU's (:func:`cpu_features` by default; tests pass others). float16 is refused on a CPU:
    only AVX512-FP16 and AMX-FP16 compute it natively, and every CPU that has them computes bfloat16 natively too.
    """
    if precision not in ("auto", *_DTYPES):
        raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    if device.type == "cuda":
        if precision == "auto":
            return Precision(torch.float16, "auto, float16 on CUDA")
        return Precision(_DTYPES[precision], "as configured")
    if precision == "fp16":
        raise ValueError(f"precision fp16 is not supported on {device.type}: use bf16 (CPUs that compute float16 "
                         "natively compute bfloat16 natively too) or fp32")
    native = native_bf16(cpu_features() if features is None else features)
    if precision == "auto":
        if native is not None:
            return Precision(torch.bfloat16, f"auto, this CPU computes bfloat16 natively ({native})")
        return Precision(torch.float32, f"auto, {_LACKS}")
    if precision == "bf16" and native is None:
        return Precision(torch.bfloat16, f"as configured, but {_LACKS}: slower than float32",
                         slower_than_float32=True)
    return Precision(_DTYPES[precision], "as configured")


def select_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The dtype of :func:`choose_precision` on this machine."""
    return choose_precision(device, precision).dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
