"""Temporal stability benchmark: per-frame stylization against the stabiliser, for every family, on clips with known
motion (:mod:`bench.clips`).

For each model a server started with the default configuration here serves (Magenta with two style photos, the
presets model with two of its presets, the official AdaIN when its files are present...) plus AdaIN on seeded random
weights with one photo (labelled untrained: it shows the mechanics, not a real stylization), each style is encoded
once, as a stream does, and each clip's frames are
stylized in order; each per-frame output is then stabilised (:class:`model.temporal.TemporalStabilizer`, default
strength). Both sequences are scored with:

- the warping error of Lai et al. (2018) along the clip's true motion, over pixels visible in both frames
  (:func:`model.quality.warping_error`): the mean absolute difference per channel in [0, 1] (the target's measure)
  and the paper's mean squared RGB distance;
- the style distance of :func:`model.quality.quality_score` (mean/std over relu1_1..relu4_1), averaged over frames,
  against the style photo; a preset has no image, so its fixed exemplar is its preview (the preset rendered by its own
  model on the bundled portrait, :func:`model.previews.preview`, as the server's style list shows it);
- compute per frame: the stylize call, and stylize plus stabilise (timed in the same loop, frame by frame).

Writes ``temporal.json``, ``temporal.md`` and, per model, ``temporal_strip_<family>.png`` (four consecutive frames
of the rotating clip: input, per-frame, stabilised, and both warping-error maps) to ``bench/results``.
``python -m bench.temporal`` runs it alone; ``python -m bench --sections temporal`` as a section.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.clips import CLIPS, Clip, make_clip
from bench.photos import load_photo
from bench.streaming import machine, measured_on
from model.encoders import BUNDLED, load_encoder
from model.family import BatchItem, StyleModel, StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.network import RELU4_1, Encoder
from model.previews import preview
from model.quality import quality_score, warping_error
from model.temporal import DEFAULT_STRENGTH, TemporalStabilizer, warp
from server.malloc import retain_freed_memory

__all__ = ["STYLES", "StreamContender", "measure_temporal", "temporal_table", "write_strip"]

RESULTS = Path(__file__).parent / "results"
#: scikit-image's stained tissue (strong colours, a fine texture) and the Hubble deep field (sparse bright dots on
#: black: the hardest for the style distance, which the averaging of dots that do not line up moves most).
STYLES = ("immunohistochemistry", "hubble_deep_field")
SIDE = 256  # frame height (the clips are 1.25x wide)
FRAMES = 12
STRIP_CLIP, STRIP_FIRST, STRIP_FRAMES = "rotate", 8, 4


@dataclass(frozen=True)
class StreamContender:
    """A model as a stream runs it: each style encoded once, then one call per frame.

    ``styles`` are scikit-image photo names, or preset ids for a family without style images; ``references`` maps a
    style to the image its style distance is measured against: the photo, or a preset's preview (it has no image;
    the preview is fixed, the same for every clip and both ways of stylizing)."""

    name: str
    family: str
    label: str  # "trained" or "untrained (random weights)"
    styles: tuple[str, ...]
    stylize: Callable[[Image.Image, str], Image.Image]  # (frame, style) -> output
    references: Mapping[str, Image.Image]


def _contender(model: StyleModel, styles: Sequence[str]) -> StreamContender:
    """``model`` with photo ``styles``, or as many of its presets when it takes no style images."""
    options = StylizeOptions(style_size=SIDE)
    presets = getattr(model, "presets", ())
    if presets and not model.capabilities.style_images:
        chosen = presets[:len(styles)]
        codes = {preset.style_id: StyleSource(code=preset.code, preset=True) for preset in chosen}
        references = {preset.style_id: preview(model, preset, SIDE) for preset in chosen}
    else:
        references = {name: load_photo(name, SIDE, fit="shorter") for name in styles}
        codes = {name: StyleSource(code=model.encode_style(image, style_size=SIDE))
                 for name, image in references.items()}

    def stylize(frame: Image.Image, style: str) -> Image.Image:
        return model.stylize_batch([BatchItem(frame, (codes[style],), options)])[0]

    label = "untrained (random weights)" if model.info.untrained else "trained"
    return StreamContender(f"{model.info.family}: {model.info.name}", model.info.family, label, tuple(codes),
                           stylize, references)


def stream_contenders(styles: Sequence[str] = STYLES) -> list[StreamContender]:
    """What a default server here serves (each with ``styles``, or two of its presets), plus AdaIN on random weights
    with the first style (it shows the mechanics on every machine, not a stylization)."""
    from model.adain import AdaINModel
    from server.config import load_config
    from server.families import build_models

    served = [_contender(model, styles) for model in build_models(load_config([]))]
    return [*served, _contender(AdaINModel.random(0, device="cpu"), styles[:1])]


@dataclass(frozen=True)
class _Run:
    per_frame: list[Image.Image]
    stable: list[Image.Image]
    stylize_seconds: float
    stabilise_seconds: float


def _run(contender: StreamContender, clip: Clip, style: str, strength: float) -> _Run:
    stabilizer = TemporalStabilizer(strength)
    contender.stylize(clip.frames[0], style)  # warm-up (first-call allocations), not timed
    per_frame, stable, stylize_seconds, stabilise_seconds = [], [], 0.0, 0.0
    for frame in clip.frames:
        start = time.perf_counter()
        out = contender.stylize(frame, style)
        middle = time.perf_counter()
        stable.append(stabilizer.stabilize(frame, out))
        stylize_seconds += middle - start
        stabilise_seconds += time.perf_counter() - middle
        per_frame.append(out)
    return _Run(per_frame, stable, stylize_seconds, stabilise_seconds)


def _style_distance(encoder: Encoder, outputs: Sequence[Image.Image], clip: Clip, style: Image.Image) -> float:
    """The mean style distance of every other frame from the second on (the first is per-frame both ways)."""
    target = image_to_tensor(style)
    return float(np.mean([quality_score(encoder, image_to_tensor(out), image_to_tensor(frame), target).style
                          for out, frame in zip(outputs[1::2], clip.frames[1::2], strict=True)]))


def _row(contender: StreamContender, clip: Clip, run: _Run, encoder: Encoder, style_name: str) -> dict:
    before, after = warping_error(run.per_frame, clip.motions), warping_error(run.stable, clip.motions)
    frames, style_image = len(clip.frames), contender.references[style_name]
    return {"model": contender.name, "family": contender.family, "label": contender.label, "clip": clip.name,
            "style": style_name, "frames": frames, "size": list(clip.frames[0].size),
            "per_frame": {"warping_error": before.mean_abs, "warping_error_lai": before.lai,
                          "style_distance": _style_distance(encoder, run.per_frame, clip, style_image),
                          "seconds_per_frame": run.stylize_seconds / frames},
            "temporal": {"warping_error": after.mean_abs, "warping_error_lai": after.lai,
                         "style_distance": _style_distance(encoder, run.stable, clip, style_image),
                         "seconds_per_frame": (run.stylize_seconds + run.stabilise_seconds) / frames,
                         "stabilise_seconds_per_frame": run.stabilise_seconds / frames}}


def measure_temporal(contenders: Sequence[StreamContender] | None = None, *, clips: Sequence[str] = tuple(CLIPS),
                     frames: int = FRAMES, side: int = SIDE, strength: float = DEFAULT_STRENGTH,
                     styles: Sequence[str] = STYLES, out: Path = RESULTS,
                     on_row: Callable[[dict], None] | None = None) -> dict:
    """Every contender on every clip in each of its styles, both ways; a strip per contender (its first style).

    ``on_row`` gets the results so far after each row (a run stopped half-way keeps what it measured)."""
    contenders = list(contenders) if contenders is not None else stream_contenders(styles)
    encoder, weights = load_encoder(BUNDLED, RELU4_1)
    made = [make_clip(name, frames=frames, side=side) for name in clips]
    strip_clip = STRIP_CLIP if STRIP_CLIP in clips else clips[0]
    results = {"evaluator": weights.source, "strength": strength, "side": side, "rows": []}
    out.mkdir(parents=True, exist_ok=True)
    for contender in contenders:
        for style in contender.styles:
            for clip in made:
                print(f"  {contender.name} on {clip.name} in {style}", flush=True)
                run = _run(contender, clip, style, strength)
                results["rows"].append(_row(contender, clip, run, encoder, style))
                if on_row is not None:
                    on_row(results)
                if clip.name == strip_clip and style == contender.styles[0]:
                    write_strip(clip, run.per_frame, run.stable, out / f"temporal_strip_{contender.family}.png")
    return results


def _error_map(outputs: Sequence[Image.Image], clip: Clip, t: int) -> Image.Image:
    """|O_t - warp(O_t-1)| (mean over channels, x4 for visibility) where visible; dark blue where not."""
    current = np.asarray(outputs[t], dtype=np.float32)
    moved = warp(np.asarray(outputs[t - 1], dtype=np.float32), clip.motions[t - 1].flow)
    error = np.clip(np.abs(current - moved).mean(-1) * 4, 0, 255).astype(np.uint8)
    rgb = np.repeat(error[..., None], 3, -1)
    rgb[~clip.motions[t - 1].visible] = (20, 20, 90)
    return Image.fromarray(rgb)


def write_strip(clip: Clip, per_frame: Sequence[Image.Image], stable: Sequence[Image.Image], path: Path,
                first: int = STRIP_FIRST, count: int = STRIP_FRAMES) -> None:
    """Consecutive frames side by side, one row each: input, per-frame, stabilised, and both error maps."""
    first = min(max(first, 1), len(clip.frames) - count)
    span = range(first, first + count)
    rows = [("input", [clip.frames[t] for t in span]), ("per-frame", [per_frame[t] for t in span]),
            ("temporal", [stable[t] for t in span]),
            ("per-frame |O_t - warp(O_t-1)| x4", [_error_map(per_frame, clip, t) for t in span]),
            ("temporal |O_t - warp(O_t-1)| x4", [_error_map(stable, clip, t) for t in span])]
    width, height = clip.frames[0].size
    label = 16
    sheet = Image.new("RGB", (width * count, (height + label) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (title, images) in enumerate(rows):
        top = r * (height + label)
        draw.text((4, top + 2), title, fill="black")
        for c, image in enumerate(images):
            sheet.paste(image.convert("RGB"), (c * width, top + label))
            if r == 0:
                draw.text((c * width + width - 60, top + 2), f"frame {first + c}", fill="black")
    sheet.save(path)


def temporal_table(results: dict) -> list[str]:
    """Markdown: one row per model and clip, per-frame against temporal, and the target ratios."""
    measured = [measured_on(results["date"][:10], results["machine"]), ""] if "machine" in results else []
    frames = {row["frames"] for row in results["rows"]}
    lasting = f" of {'/'.join(str(n) for n in sorted(frames))} frames" if frames else ""
    lines = [*measured, f"{results['side']} px high clips{lasting}, strength {results['strength']}; "
             f"warping error: mean absolute difference per channel in [0, 1] along the true motion (Lai et al.'s "
             f"squared measure in brackets); style distance scored with {results['evaluator']}.", "",
             "| model | style | clip | warping error per-frame | temporal | ratio (target <= 0.5) "
             "| style distance per-frame | temporal | ratio (<= 1.1) | ms/frame per-frame | temporal "
             "| ratio (<= 1.3) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        a, b = row["per_frame"], row["temporal"]
        name = row["model"] + (" (untrained)" if row["label"] != "trained" else "")
        lines.append(
            f"| {name} | {row['style']} | {row['clip']} | {a['warping_error']:.4f} ({a['warping_error_lai']:.5f}) | "
            f"{b['warping_error']:.4f} ({b['warping_error_lai']:.5f}) | "
            f"{b['warping_error'] / a['warping_error']:.2f} | {a['style_distance']:.3f} | "
            f"{b['style_distance']:.3f} | {b['style_distance'] / a['style_distance']:.3f} | "
            f"{a['seconds_per_frame'] * 1000:.0f} | {b['seconds_per_frame'] * 1000:.0f} | "
            f"{b['seconds_per_frame'] / a['seconds_per_frame']:.2f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.temporal", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--side", type=int, default=SIDE)
    parser.add_argument("--strength", type=float, default=DEFAULT_STRENGTH)
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated subset of {','.join(CLIPS)}")
    parser.add_argument("--styles", default=",".join(STYLES), help="comma-separated scikit-image photo names")
    args = parser.parse_args(argv)
    retain_freed_memory()  # as `python -m server` does, so the compute column is what a stream costs there
    measured = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    results = measure_temporal(clips=args.clips.split(","), frames=args.frames, side=args.side,
                               strength=args.strength, styles=args.styles.split(","), out=args.out,
                               on_row=lambda so_far: write_results(so_far | measured, args.out))
    print("\n".join(temporal_table(results)))


def write_results(results: dict, out: Path) -> None:
    """``temporal.json`` and ``temporal.md`` in ``out``."""
    (out / "temporal.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "temporal.md").write_text("\n".join(temporal_table(results)) + "\n")


if __name__ == "__main__":
    main()
