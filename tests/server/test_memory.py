"""The cost model under a real memory limit: a server process whose address space is capped (RLIMIT_AS) refuses
every request over a bound at once and serves requests at the bounds, and is still alive and healthy afterwards.

Before the cost model, an 88-byte style (2000x1 at style_size 512), a huge style_size, a Gatys start_size of 6000 or
hundreds of styles in one job each drove the process past its limit. The cap here (4.5 GiB of address space; the
server's peak resident memory at these bounds is about 1.2 GB) leaves room for torch's reservations but not for any
of those."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import (
    ServerProcess,
    code_of,
    encode,
    free_port,
    is_serving,
    make_datasets,
    png_bytes,
    random_weights_args,
    server_process,
    train_request,
)

pytestmark = pytest.mark.slow  # a server process under a memory limit

LIMIT_BYTES = int(4.5 * 2**30)
BOUNDS = {"--max-style-pixels": 256 * 256, "--max-output-pixels": 512 * 512, "--gatys-max-pixels": 128 * 128,
          "--train-max-batch-pixels": 4 * 64 * 64, "--max-styles": 4}
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[ServerProcess]:
    data, port = tmp_path / "data", free_port()
    make_datasets(data / "datasets")
    flags = [str(x) for item in BOUNDS.items() for x in item]
    args = random_weights_args(data, port, "--retain-memory-mb", "0", "--job-workers", "0", *flags)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1"}
    with server_process(args, port, tmp_path / "server.log", env=env, preexec_fn=_cap_memory, timeout=180) as node:
        yield node


def test_bounded_inputs_are_refused_or_served_under_a_memory_limit(capped_server: ServerProcess) -> None:
    stub = capped_server.stub
    small, sliver = png_bytes(64, 64, 1), encode(Image.new("RGB", (2000, 1)))
    style = pb.StyleInput(image=png_bytes(64, 64, 2))
    over = [
        lambda: stub.PutStyle(pb.PutStyleRequest(image=sliver, style_size=512), timeout=60),
        lambda: stub.PutStyle(pb.PutStyleRequest(image=small, style_size=20000), timeout=60),
        lambda: stub.Stylize(pb.StylizeRequest(content=small, styles=[style], style_size=20000), timeout=60),
        lambda: stub.Stylize(pb.StylizeRequest(content=small, styles=[style], content_size=20000), timeout=60),
        lambda: stub.SubmitGatys(pb.GatysRequest(content=small, styles=[style], size=64, start_size=6000,
                                                 num_scales=2), timeout=60),
        lambda: stub.SubmitGatys(pb.GatysRequest(content=small, styles=[pb.StyleInput(image=small, weight=1)] * 663),
                                 timeout=60),
        lambda: stub.Train(train_request(batch_size=3000), timeout=60),
    ]
    for call in over:
        assert code_of(call) == INVALID
    # at the bounds: a 256 x 256 style and a 512 x 512 output are computed within the limit
    reply = stub.Stylize(pb.StylizeRequest(content=small, styles=[style], content_size=512, style_size=256),
                         timeout=600)
    assert (reply.width, reply.height) == (512, 512)
    assert stub.PutStyle(pb.PutStyleRequest(image=small, style_size=256), timeout=600).style_size == 256
    assert capped_server.proc.poll() is None
    assert is_serving(capped_server.channel, timeout=10)
