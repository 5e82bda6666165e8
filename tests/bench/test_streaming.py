"""bench.streaming's measurements against a real server: what each reports adds up (timings are not checked)."""

from __future__ import annotations

import pytest

from bench.streaming import measure_model, streaming_table
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import png_bytes


@pytest.mark.slow  # a camera sends for three seconds
def test_every_measurement_of_a_model_adds_up(server) -> None:
    frames = [png_bytes(40, 32, seed) for seed in range(4)]
    row = measure_model(server.stub(), "", pb.StyleInput(image=png_bytes(32, 32, 9)), frames, quick=True)
    assert row["every_frame"]["frames"] == row["every_frame_temporal"]["frames"] == 4
    assert row["every_frame"]["fps"] > 0 and row["every_frame"]["server_compute_ms"] > 0
    live = row["live"]
    assert live["sent"] == 90 and live["stylized"] + live["dropped"] == 90 and live["stylized"] >= 1
    assert 0 < live["latency_p50_ms"] <= live["latency_p95_ms"]
    unary = row["against_unary"]
    assert unary["frames"] == 2 and unary["unary_ms"] > 0 and unary["stream_ms"] > 0
    assert unary["overhead_ms"] == pytest.approx(unary["stream_ms"] - unary["unary_ms"])
    table = streaming_table({"overhead": [{"model": "adain/random", "frame": [40, 32], **unary}],
                             "rows": [{"model": "adain/random", "size": 32, "frame": [40, 32], **row}]})
    assert table[2].startswith("| adain/random | 40x32 | ") and table[2].count("|") == 7
    assert table[-1].startswith("| adain/random | 40x32 | ") and table[-1].count("|") == 11
