"""Model compute: seconds per image, achieved GFLOP/s, and the machine's attainable rate measured in the same run."""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from bench.flops import adain_flops
from model.adain.stylizer import AdaINModel
from model.family import StyleSource, StylizeOptions

__all__ = [
    "ComputeResult",
    "alternating_seconds",
    "attainable_gflops",
    "measure_compute",
    "measure_magenta",
    "measure_presets",
    "median_seconds",
    "sample_seconds",
    "test_image",
]


@dataclass(frozen=True)
class ComputeResult:
    size: int
    style: str  # "inline" or "cached"
    seconds: float
    gflop: float
    gflops: float
    efficiency: float


def sample_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    return statistics.median(sample_seconds(fn, repeats, warmup))


def alternating_seconds(runs: dict[str, Callable[[], object]], repeats: int, long_call: float = math.inf
                        ) -> dict[str, list[float]]:
    """Times each run ``repeats`` times, taking turns, after one untimed warm-up call each, so that a change of the
    machine's speed during the measurement falls on every run alike.

    A run whose warm-up call took ``long_call`` seconds or more is not repeated: that call is its one sample (its
    warm-up share is noise at that length, and repeats would take many minutes: bfloat16 on a CPU without it)."""
    first = {name: sample_seconds(run, 1, warmup=0)[0] for name, run in runs.items()}
    samples = {name: [seconds] if seconds >= long_call else [] for name, seconds in first.items()}
    for _ in range(repeats):
        for name, run in runs.items():
            if first[name] < long_call:
                samples[name] += sample_seconds(run, 1, warmup=0)
    return samples


def attainable_gflops(device: torch.device, repeats: int = 10, dtype: torch.dtype = torch.float32,
                      long_call: float = math.inf) -> float:
    """The rate of one large 3x3 convolution (256 channels, 128x128, channels_last) in ``dtype``: the machine's
    practical peak for that precision."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    x = torch.rand(1, 256, 128, 128, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    def run() -> None:
        conv(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        run()  # first use: kernel selection and weight reordering
        samples = alternating_seconds({"conv": run}, repeats, long_call)["conv"]
    return 2 * 256 * 256 * 9 * 128 * 128 / statistics.median(samples) / 1e9


def test_image(size: int, seed: int) -> Image.Image:
    """A smooth random image (compresses well, like a photo) of size x size."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(3, 8, 8, generator=gen)
    big = torch.nn.functional.interpolate(small[None], size=(size, size), mode="bicubic", align_corners=False)[0]
    array = (big.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def measure_compute(
    model: AdaINModel, sizes: list[int], attainable: float, style_size: int = 512
) -> list[ComputeResult]:
    """Times stylize() at each content size with an inline style image and with cached style statistics."""
    style_image = test_image(style_size, seed=1)
    stats = model.encode_style(style_image, style_size=style_size)
    results = []
    for size in sizes:
        content = test_image(size, seed=2)
        repeats = max(2, min(10, int(4 * (512 / size) ** 2)))
        for kind, source, style_shape in (
            ("inline", StyleSource(image=style_image), (style_size, style_size)),
            ("cached", StyleSource(code=stats), None),
        ):
            run = functools.partial(model.stylize, content, [source], StylizeOptions(style_size=style_size))
            seconds = median_seconds(run, repeats)
            gflop = adain_flops(size, size, style_shape) / 1e9
            results.append(ComputeResult(size, kind, seconds, gflop, gflop / seconds, gflop / seconds / attainable))
    return results


def measure_magenta(sizes: list[int], device: str, adain: list[dict] | None = None, style_size: int = 512
                    ) -> list[dict]:
    """Times the Magenta family's stylize() as :func:`measure_compute` times AdaIN's (same images, style size and
    repeats), with an inline style image and with its stored code; ``adain`` (the compute section's rows, when this
    run measured them) is copied beside each row for comparison."""
    from model.magenta import MagentaModel  # lazily: onnxruntime loads only for this section

    model = MagentaModel.load(device=device)
    style_image = test_image(style_size, seed=1)
    code = model.encode_style(style_image, style_size=style_size)
    adain_seconds = {(r["size"], r["style"]): r["seconds"] for r in adain or []}
    rows = []
    for size in sizes:
        content = test_image(size, seed=2)
        repeats = max(2, min(10, int(4 * (512 / size) ** 2)))
        for kind, source in (("inline", StyleSource(image=style_image)), ("cached", StyleSource(code=code))):
            run = functools.partial(model.stylize, content, [source], StylizeOptions(style_size=style_size))
            rows.append({"size": size, "style": kind, "seconds": median_seconds(run, repeats),
                         "adain_seconds": adain_seconds.get((size, kind)), "device": model.info.device})
    return rows


def measure_presets(sizes: list[int], device: str, repeats: int = 10) -> list[dict]:
    """Times the presets model (one preset) beside Magenta (a stored style code, its fastest path) on the same
    content, the two interleaved call by call so that a change in the machine's speed during the run hits both;
    the ratio is the median of the per-pair ratios."""
    from model.magenta import MagentaModel  # lazily: onnxruntime loads only for this section
    from model.presets import PresetsModel

    presets, magenta = PresetsModel.load(device=device), MagentaModel.load(device=device)
    preset = StyleSource(code=presets.presets[19].code, preset=True)
    code = StyleSource(code=magenta.encode_style(test_image(256, seed=1), style_size=256))
    rows = []
    for size in sizes:
        content = test_image(size, seed=2)
        runs = (functools.partial(presets.stylize, content, [preset]),
                functools.partial(magenta.stylize, content, [code], StylizeOptions(style_size=256)))
        for run in runs:
            run()  # warm-up
        pairs = [tuple(sample_seconds(run, 1, warmup=0)[0] for run in runs) for _ in range(repeats)]
        rows.append({"size": size, "presets_seconds": statistics.median(p for p, _ in pairs),
                     "magenta_seconds": statistics.median(m for _, m in pairs),
                     "ratio": statistics.median(p / m for p, m in pairs), "repeats": repeats,
                     "device": presets.info.device})
    return rows
