"""bench.stream_transports against a real server: both transports stylize every frame (timings are not checked)."""

from __future__ import annotations

from bench.stream_transports import over_grpc, over_websocket, transports_table
from tests.helpers import free_port, png_bytes


def test_both_transports_stylize_every_frame(start_server) -> None:
    server = start_server(http_port=free_port())
    frames, style = [png_bytes(40, 32, seed) for seed in range(3)], png_bytes(32, 32, 9)
    per_frame, model = over_grpc(server.stub(), style, frames)
    assert per_frame > 0 and model
    assert over_websocket(server.http_url, style, frames) > 0  # it asserts the count and the close itself
    row = {"model": model, "frame": [40, 32], "frames": 3, "rounds": 1, "grpc_ms": 2.0, "websocket_ms": 3.0,
           "overhead_ms": 1.0, "ratio": 1.5}
    assert transports_table({"rows": [row]})[-1] == f"| {model} | 40x32 | 3 x 1 | 2.0 | 3.0 | +1.0 ms (1.50x) |"
