"""Dynamic batching through the server (on by default only on CUDA; forced on here, on the CPU)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import png_bytes


def test_concurrent_same_size_requests_share_batches_and_match_unbatched(start_server, tmp_path) -> None:
    # A batch leaves when it is full (the 4 requests) long before its delay: the delay only bounds a slow arrival, so
    # a busy machine that spreads the 4 calls out still batches them.
    batched = start_server(batching="on", max_batch_size=4, max_batch_delay_ms=10_000, data_dir=str(tmp_path / "a"))
    plain = start_server(batching="off", data_dir=str(tmp_path / "b"))
    requests = [pb.StylizeRequest(content=png_bytes(40, 32, seed), styles=[pb.StyleInput(image=png_bytes(32, 32, 9))],
                                  style_size=32) for seed in range(4)]
    stub = batched.stub()
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda r: stub.Stylize(r, timeout=60), requests))
    expected = [plain.stub().Stylize(r, timeout=60) for r in requests]
    for reply, alone in zip(replies, expected, strict=True):  # batched convolutions may round differently
        assert np.abs(_pixels(reply.image) - _pixels(alone.image)).max() <= 1
    batches = batched.metric("styletransfer_batch_size_count")
    assert 1 <= batches < 4  # at least two requests rode together
    assert batched.metric("styletransfer_batch_size_sum") == 4
    assert plain.metric("styletransfer_batch_size_sum") == plain.metric("styletransfer_batch_size_count") == 4


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.int16)
