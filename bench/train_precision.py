"""Train's bfloat16 autocast against float32: the same run (data, seed, start) in both precisions, loss by loss.

``python -m bench.train_precision`` builds a small training set (``bench.train_data``), trains a decoder from
PyTorch's initialisation behind the bundled VGG19 twice, and writes ``train_precision.md`` (the losses averaged over
windows of steps, side by side, and steps per second) and ``train_precision.png`` (both curves) to
``bench/results``. Steps per second say little on a CPU without native bfloat16, which runs bfloat16 on torch's
generic convolution.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from model.adain.train import TrainOptions, TrainProgress, start_decoder, train_decoder
from model.devices import cpu_features, dtype_name, native_bf16
from model.encoders import BUNDLED, load_encoder
from model.network import RELU4_1

__all__ = ["main", "train_curves"]

RESULTS = Path(__file__).parent / "results"
WINDOW = 25  # steps per row of the table


def train_curves(data: Path, options: TrainOptions) -> dict[str, list[TrainProgress]]:
    """Each precision's progress, one entry per step."""
    curves = {}
    for dtype in (torch.float32, torch.bfloat16):
        encoder, weights = load_encoder(BUNDLED, RELU4_1)
        progress: list[TrainProgress] = []
        with tempfile.TemporaryDirectory() as out:
            train_decoder(encoder, start_decoder(seed=options.seed), data / "content", data / "style", options,
                          out_dir=Path(out), encoder_sha256=weights.sha256, dtype=dtype, on_progress=progress.append)
        curves[dtype_name(dtype)] = progress
        print(f"  {dtype_name(dtype)}: {progress[-1].steps_per_second:.2f} steps/s", flush=True)
    return curves


def markdown(curves: dict[str, list[TrainProgress]], options: TrainOptions, seconds: float) -> str:
    full, reduced = curves["float32"], curves["bfloat16"]
    native = native_bf16(cpu_features())
    machine = f"native bfloat16 ({native})" if native else "no native bfloat16 (bfloat16 steps per second mean little)"
    lines = [f"# Train in bfloat16 (autocast) against float32 ({time.strftime('%Y-%m-%d', time.gmtime())})", "",
             f"`python -m bench.train_precision --steps {options.iterations}`: batch {options.batch_size}, "
             f"{options.image_size} px crops of {options.resize} px images, lr {options.lr:g}, "
             f"{options.warmup_steps} warm-up steps (pixel weight {options.pixel_weight:g}), style weight "
             f"{options.style_weight:g}, the bundled VGG19, the same seed, data and start in both runs; "
             f"{seconds / 60:.0f} minutes in all. This CPU: {machine}.",
             "", "| steps | float32 loss | bfloat16 loss | bfloat16 / float32 |", "|---|---|---|---|"]
    for start in range(0, len(full), WINDOW):
        a = statistics.fmean(p.loss for p in full[start:start + WINDOW])
        b = statistics.fmean(p.loss for p in reduced[start:start + WINDOW])
        lines.append(f"| {start + 1}-{min(start + WINDOW, len(full))} | {a:.4g} | {b:.4g} | {b / a:.3f} |")
    lines += ["", f"Steps per second: float32 {full[-1].steps_per_second:.3f}, bfloat16 "
                  f"{reduced[-1].steps_per_second:.3f}.", "", "![loss curves](train_precision.png)"]
    return "\n".join(lines) + "\n"


def chart(curves: dict[str, list[TrainProgress]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, progress in curves.items():
        ax.plot([p.step for p in progress], [p.loss for p in progress], label=name, linewidth=1)
    ax.set(xlabel="step", ylabel="loss (weighted sum)", yscale="log", title="AdaIN decoder training by precision")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--data", type=Path, help="a folder with content/ and style/ (default: bench.train_data's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    options = TrainOptions(iterations=args.steps, batch_size=4, image_size=32, resize=64, lr=5e-4,
                           warmup_steps=args.steps // 3, pixel_weight=10.0, style_weight=1.0,
                           checkpoint_every=args.steps, num_workers=0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        data = args.data
        if data is None:
            from bench.train_data import build

            data = Path(folder)
            build(data, seed=0, side=64)
        curves = train_curves(data, options)
    args.out.mkdir(parents=True, exist_ok=True)
    chart(curves, args.out / "train_precision.png")
    text = markdown(curves, options, time.perf_counter() - started)
    (args.out / "train_precision.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
