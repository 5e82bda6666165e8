"""StylizeStream over gRPC and over the HTTP port's WebSocket (``/v1/stylize:stream``): what the WebSocket costs
per frame besides the stream itself.

A real server (``python -m server --random-weights`` with ``--http-port``; its default model) gets the same
EVERY_FRAME stream of JPEG frames at their own size (``bench.clips``' pan clip, results asked as JPEG) once over
gRPC and once over the WebSocket, alternated (ABBA) for several rounds; wall time per frame from the first message
sent to the last result, median over rounds. Measured with 64 px frames, where the model's time does not hide the
transport, and at 256 px.

``python -m bench.stream_transports`` writes ``bench/results/stream_transports.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import statistics
import struct
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from bench.clips import make_clip
from bench.photos import load_photo
from bench.serving import free_port, server
from bench.streaming import QUALITY, STYLE, jpeg, machine
from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1.style_transfer_pb2_grpc import StyleTransferStub

__all__ = ["measure_transports", "over_grpc", "over_websocket", "transports_table"]

RESULTS = Path(__file__).parent / "results"
#: (frame height, frames per stream, rounds): small frames show the transport, 256 px what it costs in practice.
RUNS = ((64, 24, 6), (256, 8, 4))
def over_grpc(stub: StyleTransferStub, style: bytes, frames: list[bytes]) -> tuple[float, str]:
    """Seconds per frame of one EVERY_FRAME stream over gRPC, and the model that answered."""
    settings = pb.StreamSettings(styles=[pb.StyleInput(image=style)], output_format=pb.IMAGE_FORMAT_JPEG,
                                 quality=QUALITY, pacing=pb.STREAM_PACING_EVERY_FRAME, content_size=0)
    messages = [pb.StylizeStreamRequest(settings=settings),
                *(pb.StylizeStreamRequest(frame=pb.StreamFrame(image=f)) for f in frames)]
    start = time.perf_counter()
    replies = list(stub.StylizeStream(iter(messages), timeout=3600))
    assert len(replies) == len(frames) and all(r.image for r in replies), "every frame is stylized"
    return (time.perf_counter() - start) / len(frames), replies[0].model


def over_websocket(url: str, style: bytes, frames: list[bytes]) -> float:
    """Seconds per frame of the same stream over the WebSocket (sending and receiving at once, as a client must)."""
    import aiohttp

    settings = {"styles": [{"image": base64.b64encode(style).decode()}], "outputFormat": "IMAGE_FORMAT_JPEG",
                "quality": QUALITY, "pacing": "STREAM_PACING_EVERY_FRAME", "contentSize": 0}

    async def send(ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(json.dumps(settings))
        for frame in frames:
            await ws.send_bytes(frame)
        await ws.send_bytes(b"")

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> int:
        count = 0
        async for message in ws:
            assert message.type == aiohttp.WSMsgType.BINARY, message.data
            (length,) = struct.unpack(">I", message.data[:4])
            assert len(message.data) > 4 + length, "every frame is stylized"
            count += 1
        return count

    async def run() -> float:
        async with aiohttp.ClientSession() as session, session.ws_connect(url + "/v1/stylize:stream") as ws:
            start = time.perf_counter()
            _, count = await asyncio.gather(send(ws), receive(ws))
            assert count == len(frames) and ws.close_code == 1000, (count, ws.close_code)
            return (time.perf_counter() - start) / len(frames)

    return asyncio.run(run())


def measure_transports(out: Path | None = None) -> dict:
    """Both transports at each of :data:`RUNS`, alternated; written to ``out`` when given."""
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine(), "load_before": os.getloadavg(),
              "rows": []}
    style = jpeg(load_photo(STYLE, 256, fit="shorter"))
    http_port = free_port()
    with server("--http-port", str(http_port)) as srv:
        url = f"http://127.0.0.1:{http_port}"
        for side, count, rounds in RUNS:
            frames = [jpeg(f) for f in make_clip("pan", frames=count, side=side).frames]
            over_grpc(srv.stub, style, frames[:2])  # warm-up: the first calls at a size are slower
            over_websocket(url, style, frames[:2])
            seconds: dict[str, list[float]] = {"grpc": [], "websocket": []}
            for i in range(rounds):
                for transport in ("grpc", "websocket") if i % 2 == 0 else ("websocket", "grpc"):
                    if transport == "grpc":
                        per_frame, model = over_grpc(srv.stub, style, frames)
                    else:
                        per_frame = over_websocket(url, style, frames)
                    seconds[transport].append(per_frame)
            grpc_ms, ws_ms = (statistics.median(seconds[t]) * 1000 for t in ("grpc", "websocket"))
            result["rows"].append({"model": model, "frame": list(Image.open(io.BytesIO(frames[0])).size),
                                   "frames": count, "rounds": rounds, "grpc_ms": grpc_ms, "websocket_ms": ws_ms,
                                   "overhead_ms": ws_ms - grpc_ms, "ratio": ws_ms / grpc_ms})
    result["load_after"] = os.getloadavg()
    if out is not None:
        _write(result, out)
    return result


def transports_table(result: dict) -> list[str]:
    lines = ["| model | frame | frames x rounds | gRPC ms/frame | WebSocket ms/frame | WebSocket overhead |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['model']} | {row['frame'][0]}x{row['frame'][1]} | {row['frames']} x {row['rounds']} | "
                     f"{row['grpc_ms']:.1f} | {row['websocket_ms']:.1f} | {row['overhead_ms']:+.1f} ms "
                     f"({row['ratio']:.2f}x) |")
    return lines


def _write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "stream_transports.json").write_text(json.dumps(result, indent=2) + "\n")
    machine = result["machine"]
    head = [f"StylizeStream over gRPC and over the HTTP port's WebSocket, EVERY_FRAME, {result['date']}: "
            f"{machine['cores']} cores ({machine['cpu']}), no GPU; load average (1 min) "
            f"{result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after. Wall time per frame, "
            "median over alternated rounds. `python -m bench.stream_transports` reproduces it.", ""]
    (out / "stream_transports.md").write_text("\n".join(head + transports_table(result)) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print("\n".join(transports_table(measure_transports(args.out))))


if __name__ == "__main__":
    main()
