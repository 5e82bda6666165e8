"""The precision section's rendering and targets, from a made-up result, and the alternating timer's rule for long
calls (on a fake clock)."""

from __future__ import annotations

import pytest

from bench import compute, report
from bench.precision import precision_table, precision_targets


def _result(native: str) -> dict:
    rows = [{"precision": p, "size": 512, "style": "registered", "seconds": s, "samples": n, "gflop": 253.1,
             "gflops": 253.1 / s, "efficiency": e} for p, s, n, e in (("fp32", 0.5, 3, 0.96), ("bf16", 0.25, 3, 0.9))]
    return {"device": "cpu", "native_bf16": native, "started": "2026-12-05 03:00 UTC",
            "attainable_gflops": {"fp32": 528.0, "bf16": 1120.0}, "dtypes": {"fp32": "float32", "bf16": "bfloat16"},
            "compute": rows, "reference_512_seconds": 1.8,
            "serving": {"fp32": {"512": {"p50_ms": 515.0, "calls": 6}}, "bf16": {"512": {"p50_ms": 262.0, "calls": 6}}},
            "difference": [{"precision": "bf16", "pair": "astronaut x immunohistochemistry", "mean_levels": 0.41,
                            "worst_levels": 2, "content_change": 0.004, "style_change": -0.012}]}


def test_the_table_puts_each_precision_beside_float32() -> None:
    lines = precision_table(_result("avx512_bf16"))
    assert lines[0].startswith("Precisions on cpu, native bfloat16 (avx512_bf16).")
    assert "| bfloat16 | 512 px | registered | 0.250 | 1012.4 | 0.90 | 2.00 |" in lines
    assert "| bfloat16 | 512 px | 262.0 | 250.0 | 12.0 |" in lines  # serving overhead against its own precision
    assert "| bfloat16 | astronaut x immunohistochemistry | 0.41 | 2 | +0.4% | -1.2% |" in lines


def test_targets_are_checked_and_a_cpu_without_native_bfloat16_is_named() -> None:
    assert precision_targets(_result("avx512_bf16")) == [
        ("bfloat16 512 px registered style >= 1.7 x float32", "2.00x", True),
        ("gRPC bfloat16 512 px >= 4 x the reference's eager float32", "6.87x", True)]
    slow = _result("")
    slow["compute"][1]["seconds"], slow["compute"][1]["samples"] = 20.0, 1
    slow["serving"]["bf16"]["512"]["p50_ms"] = 20500.0
    assert [(met, measured) for _, measured, met in report.targets({"precision": slow})] == [
        (False, "0.03x (no native bfloat16)"), (False, "0.09x (no native bfloat16)")]
    assert "**no native bfloat16 on this CPU**" in precision_table(slow)[0]
    assert "| bfloat16 | 512 px | registered | 20.000 (1 call) |" in "\n".join(precision_table(slow))


def test_long_calls_are_timed_once_and_short_ones_alternate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(compute.time, "perf_counter", lambda: clock[0])
    calls: list[str] = []

    def run(name: str, seconds: float) -> None:
        calls.append(name)
        clock[0] += seconds

    samples = compute.alternating_seconds({"short": lambda: run("short", 1.0), "long": lambda: run("long", 30.0)},
                                          repeats=3, long_call=10.0)
    assert samples == {"short": [1.0, 1.0, 1.0], "long": [30.0]}
    assert calls == ["short", "long", "short", "short", "short"]  # each warmed up once; the long one not repeated
