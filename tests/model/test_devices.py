"""Device and precision choice: what ``auto`` picks on CPUs with and without native bfloat16 (their features injected),
what can be forced, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.devices import choose_precision, cpu_features, native_bf16, select_device, select_dtype

CPU = torch.device("cpu")
# /proc/cpuinfo feature lists of real CPUs, cut to what matters here
ZEN1 = {"fma", "avx", "avx2", "f16c"}  # AVX2 only
SKYLAKE_SP = ZEN1 | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}  # AVX-512, bf16 only by conversion
ZEN4 = SKYLAKE_SP | {"avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_tile", "amx_bf16", "amx_int8", "avx512_fp16"}
GRAVITON3 = {"fp", "asimd", "sve", "svebf16", "i8mm", "bf16"}
GRAVITON2 = {"fp", "asimd", "asimddp"}  # Neoverse N1: no BF16 extension


@pytest.mark.parametrize(("features", "native"), [(ZEN4, "avx512_bf16"), (SAPPHIRE_RAPIDS, "amx_bf16"),
                                                  (GRAVITON3, "bf16")])
def test_auto_picks_bfloat16_on_a_cpu_that_computes_it_natively(features: set[str], native: str) -> None:
    chosen = choose_precision(CPU, "auto", features=features)
    assert chosen.dtype == torch.bfloat16 and not chosen.slower_than_float32
    assert chosen.reason == f"auto, this CPU computes bfloat16 natively ({native})"


@pytest.mark.parametrize("features", [ZEN1, SKYLAKE_SP, GRAVITON2, set()], ids=["avx2", "avx512", "arm", "unknown"])
def test_auto_keeps_float32_elsewhere(features: set[str]) -> None:
    chosen = choose_precision(CPU, "auto", features=features)
    assert chosen.dtype == torch.float32 and "lacks native bfloat16" in chosen.reason


def test_torch_without_onednn_keeps_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """The instructions help only through oneDNN; torch's own bfloat16 convolutions are far slower than float32."""
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert native_bf16(SAPPHIRE_RAPIDS) is None
    assert choose_precision(CPU, "auto", features=SAPPHIRE_RAPIDS).dtype == torch.float32


def test_fp32_and_bf16_can_be_forced_and_fp16_is_refused_on_cpu() -> None:
    assert choose_precision(CPU, "fp32", features=ZEN4).dtype == torch.float32
    native = choose_precision(CPU, "bf16", features=ZEN4)
    assert (native.dtype, native.slower_than_float32, native.reason) == (torch.bfloat16, False, "as configured")
    emulated = choose_precision(CPU, "bf16", features=ZEN1)
    assert emulated.dtype == torch.bfloat16 and emulated.slower_than_float32
    assert "slower than float32" in emulated.reason
    with pytest.raises(ValueError, match="fp16 is not supported on cpu: use bf16"):
        choose_precision(CPU, "fp16", features=SAPPHIRE_RAPIDS)
    with pytest.raises(ValueError, match="auto, fp32, fp16 or bf16"):
        choose_precision(CPU, "int8")


def test_cuda_keeps_float16_by_default() -> None:
    cuda = torch.device("cuda")  # only its type is read: no GPU needed
    assert choose_precision(cuda, "auto").dtype == torch.float16
    assert choose_precision(cuda, "bf16").dtype == torch.bfloat16


def test_cpu_features_are_read_from_x86_flags_and_arm_features(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd sve bf16\nCPU implementer\t: 0x41\n")
    assert cpu_features(x86) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_features(arm) == {"fp", "asimd", "sve", "bf16"}
    assert cpu_features(tmp_path / "missing") == frozenset()


def test_this_machine_gets_what_its_features_say() -> None:
    expected = torch.bfloat16 if native_bf16(cpu_features()) else torch.float32
    assert select_dtype(CPU, "auto") == expected


def test_device_choice() -> None:
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            select_device("cuda")
