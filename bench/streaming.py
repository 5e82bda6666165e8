"""Streams: StylizeStream's frames per second for each served model at 256 and 512 px, and its cost per frame against
one Stylize call per frame.

A real server (``python -m server --random-weights``: AdaIN's architecture on seeded random weights, whose compute
is that of the official weights, and every family that is served offline, e.g. Magenta's bundled weights) gets a
camera panning over a photo (``bench.clips``' pan clip, frames sent as JPEG, results asked as JPEG):

- EVERY_FRAME: the frames as fast as flow control takes them; frames per second between the first result and the
  last, with and without temporal stabilisation;
- LIVE: a camera sending 30 frames per second for a few seconds; frames stylized per second, the share dropped,
  and the latency from sending a frame to receiving its result (p50, p95);
- against unary: the same frames through one Stylize call each (the style inline, as a client without streams
  sends it; the server's cache spares its encoding) and through one EVERY_FRAME stream, in alternation, wall time
  per frame of each; the overhead is the stream's minus unary's. Measured at each size, and first with 80x64 frames,
  where the model's time does not hide what the call or the stream costs besides it.

``python -m bench.streaming`` writes ``bench/results/streaming.{json,md}``; ``python -m bench`` runs it as the
``streaming`` section.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from bench.clips import make_clip
from bench.photos import load_photo
from bench.serving import server
from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1.style_transfer_pb2_grpc import StyleTransferStub

__all__ = ["QUALITY", "STYLE", "against_unary", "every_frame", "jpeg", "live", "machine", "measure_model",
           "measure_streaming", "measured_on", "streaming_table", "write_streaming_results"]

RESULTS = Path(__file__).parent / "results"
SIZES = (256, 512)
#: Frames small enough that the model's time does not hide what a stream or a call costs besides it.
OVERHEAD_SIDE = 64
CAMERA_FPS = 30
STYLE = "immunohistochemistry"  # scikit-image's, as in the quality benchmark
QUALITY = 90


def jpeg(image: Image.Image) -> bytes:
    """A frame as a camera app sends it: JPEG at :data:`QUALITY`."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def _settings(model: str, style: pb.StyleInput, pacing: int, temporal: bool = False) -> pb.StylizeStreamRequest:
    return pb.StylizeStreamRequest(settings=pb.StreamSettings(
        model=model, styles=[style], output_format=pb.IMAGE_FORMAT_JPEG, quality=QUALITY,
        pacing=pacing, temporal=pb.TemporalOptions(enabled=temporal)))


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def every_frame(stub: StyleTransferStub, model: str, style: pb.StyleInput, frames: list[bytes],
                temporal: bool = False) -> dict:
    """One EVERY_FRAME stream of ``frames``: results per second after the first, and the server's median stages."""
    messages = [_settings(model, style, pb.STREAM_PACING_EVERY_FRAME, temporal),
                *(pb.StylizeStreamRequest(frame=pb.StreamFrame(image=f)) for f in frames)]
    start = time.perf_counter()
    stamps, compute = [], []
    for reply in stub.StylizeStream(iter(messages), timeout=3600):
        assert not reply.HasField("error"), reply.error
        stamps.append(time.perf_counter())
        compute.append(reply.timing.compute_ms)
    return {"fps": (len(stamps) - 1) / (stamps[-1] - stamps[0]), "frames": len(stamps),
            "seconds_per_frame": (stamps[-1] - start) / len(stamps), "first_result_seconds": stamps[0] - start,
            "server_compute_ms": statistics.median(compute)}


def live(stub: StyleTransferStub, model: str, style: pb.StyleInput, frames: list[bytes], seconds: float) -> dict:
    """A camera sending ``frames`` (cycled) at CAMERA_FPS for ``seconds`` over a LIVE stream."""
    sent: dict[int, float] = {}

    def camera() -> Iterator[pb.StylizeStreamRequest]:
        yield _settings(model, style, pb.STREAM_PACING_LIVE)
        start = time.perf_counter()
        for i in range(round(seconds * CAMERA_FPS)):
            time.sleep(max(0.0, start + i / CAMERA_FPS - time.perf_counter()))
            sent[i] = time.perf_counter()
            yield pb.StylizeStreamRequest(frame=pb.StreamFrame(image=frames[i % len(frames)], sequence=i))

    stylized: list[tuple[float, float]] = []  # (received at, latency)
    dropped = 0
    for reply in stub.StylizeStream(camera(), timeout=3600):
        if reply.dropped:
            dropped += 1
            continue
        now = time.perf_counter()
        stylized.append((now, now - sent[reply.sequence]))
    received = [at for at, _ in stylized]
    latency_ms = [lat * 1000 for _, lat in stylized]
    return {"fps": (len(received) - 1) / (received[-1] - received[0]) if len(received) > 1 else 0.0,
            "sent": len(sent), "stylized": len(stylized), "dropped": dropped,
            "latency_p50_ms": _pct(latency_ms, 50), "latency_p95_ms": _pct(latency_ms, 95)}


def against_unary(stub: StyleTransferStub, model: str, style: pb.StyleInput, frames: list[bytes], rounds: int) -> dict:
    """Wall time per frame of one Stylize call per frame and of one stream, alternated ``rounds`` times."""
    seconds: dict[str, list[float]] = {"unary": [], "stream": []}
    compute: dict[str, list[float]] = {"unary": [], "stream": []}
    for _ in range(rounds):
        start = time.perf_counter()
        for f in frames:
            reply = stub.Stylize(pb.StylizeRequest(  # each round computes: the same frames again are not cached
                content=f, styles=[style], model=model, output_format=pb.IMAGE_FORMAT_JPEG,
                quality=QUALITY, skip_response_cache=True), timeout=600)
            compute["unary"].append(reply.timing.compute_ms)
        seconds["unary"].append((time.perf_counter() - start) / len(frames))
        messages = [_settings(model, style, pb.STREAM_PACING_EVERY_FRAME),
                    *(pb.StylizeStreamRequest(frame=pb.StreamFrame(image=f)) for f in frames)]
        start = time.perf_counter()
        compute["stream"] += [r.timing.compute_ms for r in stub.StylizeStream(iter(messages), timeout=3600)]
        seconds["stream"].append((time.perf_counter() - start) / len(frames))
    unary, stream = statistics.median(seconds["unary"]), statistics.median(seconds["stream"])
    return {"unary_ms": unary * 1000, "stream_ms": stream * 1000, "overhead_ms": (stream - unary) * 1000,
            "ratio": stream / unary, "unary_compute_ms": statistics.median(compute["unary"]),
            "stream_compute_ms": statistics.median(compute["stream"]), "rounds": rounds, "frames": len(frames)}


def measure_model(stub: StyleTransferStub, model: str, style: pb.StyleInput, frames: list[bytes], quick: bool) -> dict:
    """Every measurement of one model on ``frames``, after a warm-up (the first calls at a size are slower)."""
    every_frame(stub, model, style, frames[:2])
    return {"every_frame": every_frame(stub, model, style, frames),
            "every_frame_temporal": every_frame(stub, model, style, frames, temporal=True),
            "live": live(stub, model, style, frames, seconds=3 if quick else 6),
            "against_unary": against_unary(stub, model, style, frames[: len(frames) // 2], 1 if quick else 2)}


def _models(stub: StyleTransferStub, style_image: bytes) -> list[tuple[str, str, pb.StyleInput]]:
    """(name, family/version, style) of every model the server serves: the style image, or for a model that renders
    only its built-in presets, the first of them."""
    presets: dict[str, str] = {}
    for style in stub.ListStyles(pb.ListStylesRequest(page_size=1000), timeout=120).styles:
        if style.builtin:
            presets.setdefault(style.model, style.style_id)
    reply = stub.ListModels(pb.ListModelsRequest(), timeout=120)
    return [(m.name, f"{m.family}/{m.version}",
             pb.StyleInput(image=style_image) if m.style_images else pb.StyleInput(style_id=presets[m.name]))
            for m in reply.models if not m.problem]


def measure_streaming(quick: bool = False, out: Path | None = None) -> dict:
    """Every measurement above for every served model at each size; written to ``out`` after each model and size
    when given."""
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine(), "load_before": os.getloadavg(),
              "overhead": [], "rows": []}
    count = 6 if quick else 10
    style_image = jpeg(load_photo(STYLE, 512, fit="shorter"))
    with server() as srv:
        small = [jpeg(f) for f in make_clip("pan", frames=8 if quick else 24, side=OVERHEAD_SIDE).frames]
        for name, address, style in _models(srv.stub, style_image):
            print(f"  {address}: overhead at {OVERHEAD_SIDE} px", file=sys.stderr, flush=True)
            against_unary(srv.stub, name, style, small[:2], 1)  # warm-up
            result["overhead"].append({"model": address, "frame": list(Image.open(io.BytesIO(small[0])).size),
                                       **against_unary(srv.stub, name, style, small, 1 if quick else 3)})
            result["load_after"] = os.getloadavg()
            if out is not None:
                write_streaming_results(result, out)
        for size in SIZES:
            frames = [jpeg(f) for f in make_clip("pan", frames=count, side=size).frames]
            for name, address, style in _models(srv.stub, style_image):
                print(f"  {address} at {size} px", file=sys.stderr, flush=True)
                row = {"model": address, "size": size, "frame": list(Image.open(io.BytesIO(frames[0])).size),
                       **measure_model(srv.stub, name, style, frames, quick)}
                result["rows"].append(row)
                result["load_after"] = os.getloadavg()
                if out is not None:
                    write_streaming_results(result, out)
    return result


def machine() -> dict:
    """The CPU, the cores this process may use and Python's version, for a results page's heading."""
    return {"cpu": _cpu_model() or platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version()}


def measured_on(date: str | None = None, host: dict | None = None) -> str:
    """The sentence a results page names its hardware and date with: ``host`` as :func:`machine` recorded it (this
    one unless given), the date today unless given."""
    host = host or machine()
    return f"Measured on {host['cpu']}, {host['cores']} cores, {date or datetime.now(UTC).strftime('%Y-%m-%d')}."


@functools.cache
def _cpu_model() -> str:
    """The CPU's model name on Linux ("AMD EPYC 7B12"), where platform.processor() gives only "" or "x86_64"; read
    once, as results pages are rewritten after every row."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def streaming_table(result: dict) -> list[str]:
    """Markdown: the overhead at small frames, then every measurement at each size."""
    lines = ["| model | frame | unary ms/frame | stream ms/frame | stream overhead | server compute ms (unary / "
             "stream) |", "|---|---|---|---|---|---|"]
    for row in result["overhead"]:
        lines.append(f"| {row['model']} | {row['frame'][0]}x{row['frame'][1]} | {row['unary_ms']:.1f} | "
                     f"{row['stream_ms']:.1f} | {row['overhead_ms']:+.1f} ms ({row['ratio']:.2f}x) | "
                     f"{row['unary_compute_ms']:.1f} / {row['stream_compute_ms']:.1f} |")
    lines += ["", "| model | frame | EVERY_FRAME fps | with temporal | LIVE fps (30 fps camera) | LIVE dropped | "
              "LIVE latency p50 / p95 | unary ms/frame | stream ms/frame | stream overhead |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        e, t, lv, u = row["every_frame"], row["every_frame_temporal"], row["live"], row["against_unary"]
        lines.append(
            f"| {row['model']} | {row['frame'][0]}x{row['frame'][1]} | {e['fps']:.2f} | {t['fps']:.2f} | "
            f"{lv['fps']:.2f} | {lv['dropped']}/{lv['sent']} | {lv['latency_p50_ms']:.0f} / "
            f"{lv['latency_p95_ms']:.0f} ms | {u['unary_ms']:.0f} | {u['stream_ms']:.0f} | "
            f"{u['overhead_ms']:+.0f} ms ({u['ratio']:.2f}x) |")
    return lines


def write_streaming_results(result: dict, out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "streaming.json").write_text(json.dumps(result, indent=2) + "\n")
    machine = result["machine"]
    head = [f"StylizeStream throughput, {result['date']}: {machine['cores']} cores ({machine['cpu']}), no GPU; "
            f"load average (1 min) {result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after. "
            "`python -m bench.streaming` reproduces it.", ""]
    (out / "streaming.md").write_text("\n".join(head + streaming_table(result)) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer frames and rounds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    measure_streaming(args.quick, args.out)


if __name__ == "__main__":
    main()
