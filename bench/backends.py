"""AdaIN's two backends side by side: PyTorch (``model.adain.fast``) and ONNX Runtime, same weights, same run.

At each content size and for an inline style image and a registered style (cached statistics), the two backends'
calls alternate (torch, onnxruntime, torch, ...), so a change of the machine's load during the run falls on both
alike. The load average is recorded at the start and end of the section: on a shared machine the absolute numbers
move with it, the ratio much less.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys

from bench.compute import alternating_seconds, test_image
from model.adain.stylizer import BACKENDS, AdaINModel
from model.family import StyleSource, StylizeOptions

__all__ = ["backends_table", "bench_backends"]

STYLE_SIZE = 512


def _repeats(size: int, quick: bool) -> int:
    """Timed calls per backend: more for small images, whose times are short and noisier."""
    if quick:
        return 2
    return {256: 8, 512: 4}.get(size, 2)


def bench_backends(model: AdaINModel, sizes: list[int], quick: bool) -> dict:
    """Median seconds per stylize for each size, style kind and backend, with the load average around the run."""
    models = {backend: model.with_backend(backend) for backend in BACKENDS}
    style = test_image(STYLE_SIZE, seed=1)
    codes = {backend: m.encode_style(style, style_size=STYLE_SIZE) for backend, m in models.items()}
    load_before = os.getloadavg()
    rows = []
    for size in sizes:
        content = test_image(size, seed=2)
        for kind in ("inline", "registered"):
            runs = {backend: functools.partial(
                        m.stylize, content,
                        [StyleSource(image=style) if kind == "inline" else StyleSource(code=codes[backend])],
                        StylizeOptions(style_size=STYLE_SIZE))
                    for backend, m in models.items()}
            samples = alternating_seconds(runs, _repeats(size, quick))
            row = {"size": size, "style": kind} | {b: statistics.median(s) for b, s in samples.items()}
            print(f"  {size} px, {kind} style: " + ", ".join(f"{b} {row[b]:.3f} s" for b in BACKENDS),
                  file=sys.stderr, flush=True)
            rows.append(row)
    return {"rows": rows, "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
            "cores": os.cpu_count(), "device": str(model.device)}


def backends_table(result: dict) -> list[str]:
    load = result["load_average"]
    lines = [f"Backends on {result['device']} (load average {load['before']:.1f} before, {load['after']:.1f} after, "
             f"{result['cores']} cores; calls alternate between backends):", "",
             "| content | style | torch s | onnxruntime s | onnxruntime / torch |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['size']} px | {r['style']} | {r['torch']:.3f} | {r['onnxruntime']:.3f} "
                     f"| {r['onnxruntime'] / r['torch']:.2f} |")
    return lines
