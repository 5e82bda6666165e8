"""Turns a results dict into the Markdown table (with the performance targets checked) and a PNG chart."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["attainable_table", "can_chart", "compute_table", "gatys_table", "magenta_table", "memory_table",
           "presets_table", "serving_table", "targets", "write_chart", "write_markdown"]


def _compute_row(results: dict, size: int, style: str) -> dict | None:
    return next((r for r in results.get("compute", []) if r["size"] == size and r["style"] == style), None)


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the performance issue whose sections this run measured."""
    rows = []
    cached, inline = _compute_row(results, 512, "cached"), _compute_row(results, 512, "inline")
    if cached and inline:
        rows.append(("cached-style 512 px efficiency >= 0.85", f"{cached['efficiency']:.2f}",
                     cached["efficiency"] >= 0.85))
        rows.append(("inline-style 512 px efficiency >= 0.80", f"{inline['efficiency']:.2f}",
                     inline["efficiency"] >= 0.80))
    if "serving" in results:
        rows += _serving_targets(results["serving"])
    for key, value in results.get("memory", {}).items():
        if key == "4096x4096":
            gb = value["peak_rss_bytes"] / 1e9
            rows.append(("16 MP peak RSS <= 6 GB", f"{gb:.2f} GB", gb <= 6.0))
    if "precision" in results:
        from bench.precision import precision_targets  # lazily: it imports the models

        rows += precision_targets(results["precision"])
    if "serving" in results:
        start = results["serving"]["startup_seconds"]
        rows.append(("server start to SERVING <= 5 s", f"{start:.2f} s", start <= 5.0))
    return rows


def _serving_targets(serving: dict) -> list[tuple[str, str, bool]]:
    rows = []
    for size, limit in (("512", None), ("256", 15.0)):
        single = serving[size]["runs"][0]
        overhead_ms = single["p50_ms"] - serving[size]["in_process_seconds"] * 1000
        if limit is None:
            share = overhead_ms / single["p50_ms"]
            rows.append(("serving overhead <= 5% at 512 px", f"{overhead_ms:.1f} ms ({share:.1%})", share <= 0.05))
        else:
            met = overhead_ms <= limit
            rows.append((f"serving overhead <= {limit:.0f} ms at 256 px", f"{overhead_ms:.1f} ms", met))
    four = next((r for r in serving["256"]["runs"] if r["concurrency"] == 4), None)
    if four is not None:
        # Throughput is calls per second on both sides: the in-process side's mean time per image, not its median.
        ratio = four["throughput"] * serving["256"]["in_process_mean_seconds"]
        rows.append(("4-client throughput >= 0.95 x in-process single stream", f"{ratio:.3f}", ratio >= 0.95))
    return rows


def attainable_table(gflops: float) -> list[str]:
    return [f"Attainable rate (3x3 conv, 256 ch, 128x128, channels_last): **{gflops:.0f} GFLOP/s**."]


def compute_table(compute: list[dict]) -> list[str]:
    lines = ["| content | style | s / image | GFLOP | GFLOP/s | efficiency |", "|---|---|---|---|---|---|"]
    for r in compute:
        lines.append(f"| {r['size']} px | {r['style']} | {r['seconds']:.3f} | {r['gflop']:.1f} | {r['gflops']:.0f} "
                     f"| {r['efficiency']:.2f} |")
    return lines


def magenta_table(magenta: list[dict]) -> list[str]:
    lines = ["| Magenta (ONNX Runtime) | style | s / image | AdaIN s / image, same run |", "|---|---|---|---|"]
    for r in magenta:
        adain = f"{r['adain_seconds']:.3f}" if r.get("adain_seconds") is not None else "not measured"
        lines.append(f"| {r['size']} px | {r['style']} | {r['seconds']:.3f} | {adain} |")
    return lines


def presets_table(presets: list[dict]) -> list[str]:
    lines = ["| content | presets s / image | Magenta s / image (stored style) | presets / Magenta |",
             "|---|---|---|---|"]
    for r in presets:
        lines.append(f"| {r['size']} px | {r['presets_seconds']:.3f} | {r['magenta_seconds']:.3f} | {r['ratio']:.2f} |")
    return lines


def serving_table(serving: dict) -> list[str]:
    lines = ["| serving | clients | p50 ms | p95 ms | p99 ms | req/s | in-process s/image |",
             "|---|---|---|---|---|---|---|"]
    for size in ("256", "512"):
        section = serving[size]
        for r in section["runs"]:
            lines.append(f"| {size} px, registered style | {r['concurrency']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
                         f"| {r['p99_ms']:.1f} | {r['throughput']:.2f} | {section['in_process_seconds']:.3f} |")
    return lines


def memory_table(memory: dict) -> list[str]:
    lines = ["| memory: content | peak server RSS | seconds |", "|---|---|---|"]
    for key, value in memory.items():
        lines.append(f"| {key} | {value['peak_rss_bytes'] / 1e9:.2f} GB | {value['seconds']:.1f} |")
    return lines


def gatys_table(gatys: dict) -> list[str]:
    lines = ["| Gatys | s / iteration |", "|---|---|"]
    for size, value in gatys.items():
        lines.append(f"| {size} px | {value['seconds_per_iteration']:.3f} |")
    return lines


def write_markdown(results: dict, tables: Mapping[str, Callable[[Any], list[str]]]) -> str:
    """The run's header, then each measured section's table in ``tables`` order, then the targets it can check."""
    m = results["machine"]
    lines = [f"Measured {results['date']} on {m['cpu']} ({m['cores']} threads), device {m['device']}, "
             f"torch {m['torch']}."]
    for key, table in tables.items():
        if key in results:
            lines += [*([""] if key != "attainable_gflops" else []), *table(results[key])]
    checked = targets(results)
    if checked:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {name} | {measured} | {'yes' if met else 'NO'} |" for name, measured, met in checked]
    return "\n".join(lines) + "\n"


def can_chart(results: dict) -> bool:
    """The chart plots compute efficiency and 256 px serving throughput: both sections must be measured."""
    return "compute" in results and "serving" in results


def write_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for style in ("cached", "inline"):
        rows = [r for r in results["compute"] if r["style"] == style]
        left.plot([r["size"] for r in rows], [r["efficiency"] for r in rows], marker="o", label=f"{style} style")
    left.axhline(1.0, color="grey", linestyle=":")
    left.set(xlabel="content size (px)", ylabel="achieved / attainable", title="Compute efficiency", ylim=(0, 1.1))
    left.legend()
    runs = results["serving"]["256"]["runs"]
    xs = [r["concurrency"] for r in runs]
    right.plot(xs, [r["throughput"] for r in runs], marker="o", label="req/s")
    right.axhline(1 / results["serving"]["256"]["in_process_mean_seconds"], color="grey", linestyle=":",
                  label="in-process single stream")
    right.set(xlabel="concurrent clients", ylabel="requests / s", title="Serving, 256 px, registered style")
    right.set_xscale("log", base=2)
    right.set_ylim(0, 1.2 / results["serving"]["256"]["in_process_mean_seconds"])  # from zero: no magnified noise
    right.legend()
    fig.suptitle(f"styletransfer benchmark on {results['machine']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
