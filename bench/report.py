"""Turns a results dict into the Markdown table (with the issue's targets checked) and a PNG chart."""

from __future__ import annotations

from pathlib import Path

__all__ = ["targets", "write_chart", "write_markdown"]


def _compute_row(results: dict, size: int, style: str) -> dict:
    return next(r for r in results["compute"] if r["size"] == size and r["style"] == style)


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the performance issue that this run measured."""
    rows = []
    cached, inline = _compute_row(results, 512, "cached"), _compute_row(results, 512, "inline")
    rows.append(("cached-style 512 px efficiency >= 0.85", f"{cached['efficiency']:.2f}", cached["efficiency"] >= 0.85))
    rows.append(("inline-style 512 px efficiency >= 0.80", f"{inline['efficiency']:.2f}", inline["efficiency"] >= 0.80))
    serving = results["serving"]
    for size, limit in (("512", None), ("256", 15.0)):
        single = serving[size]["runs"][0]
        overhead_ms = single["p50_ms"] - serving[size]["in_process_seconds"] * 1000
        if limit is None:
            share = overhead_ms / single["p50_ms"]
            rows.append(("serving overhead <= 5% at 512 px", f"{overhead_ms:.1f} ms ({share:.1%})", share <= 0.05))
        else:
            met = overhead_ms <= limit
            rows.append((f"serving overhead <= {limit:.0f} ms at 256 px", f"{overhead_ms:.1f} ms", met))
    four = next(r for r in serving["256"]["runs"] if r["concurrency"] == 4)
    # Throughput is calls per second on both sides: the in-process side's mean time per image, not its median.
    ratio = four["throughput"] * serving["256"]["in_process_mean_seconds"]
    rows.append(("4-client throughput >= 0.95 x in-process single stream", f"{ratio:.3f}", ratio >= 0.95))
    for key, value in results["memory"].items():
        if key == "4096x4096":
            gb = value["peak_rss_bytes"] / 1e9
            rows.append(("16 MP peak RSS <= 6 GB", f"{gb:.2f} GB", gb <= 6.0))
    start = serving["startup_seconds"]
    rows.append(("server start to SERVING <= 5 s", f"{start:.2f} s", start <= 5.0))
    return rows


def write_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['cpu']} ({m['cores']} threads), device {m['device']}, torch {m['torch']}.",
        f"Attainable rate (3x3 conv, 256 ch, 128x128, channels_last): **{results['attainable_gflops']:.0f} GFLOP/s**.",
        "",
        "| content | style | s / image | GFLOP | GFLOP/s | efficiency |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["compute"]:
        lines.append(f"| {r['size']} px | {r['style']} | {r['seconds']:.3f} | {r['gflop']:.1f} | {r['gflops']:.0f} "
                     f"| {r['efficiency']:.2f} |")
    lines += ["", "| serving | clients | p50 ms | p95 ms | p99 ms | req/s | in-process s/image |",
              "|---|---|---|---|---|---|---|"]
    for size in ("256", "512"):
        section = results["serving"][size]
        for r in section["runs"]:
            lines.append(f"| {size} px, registered style | {r['concurrency']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
                         f"| {r['p99_ms']:.1f} | {r['throughput']:.2f} | {section['in_process_seconds']:.3f} |")
    lines += ["", "| memory: content | peak server RSS | seconds |", "|---|---|---|"]
    for key, value in results["memory"].items():
        lines.append(f"| {key} | {value['peak_rss_bytes'] / 1e9:.2f} GB | {value['seconds']:.1f} |")
    lines += ["", "| Gatys | s / iteration |", "|---|---|"]
    for size, value in results["gatys"].items():
        lines.append(f"| {size} px | {value['seconds_per_iteration']:.3f} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for name, measured, met in targets(results):
        lines.append(f"| {name} | {measured} | {'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


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
