"""Admission, overload, deadlines and cancellation on a server with one worker."""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import code_of, png_bytes, wait_for

SMALL = pb.StylizeRequest(content=png_bytes(32, 32, 1), styles=[pb.StyleInput(image=png_bytes(32, 32, 2))],
                          style_size=32)
# Upscaled on the server to 512 px: hundreds of milliseconds of compute on a CPU, from a tiny upload.
SLOW = pb.StylizeRequest(content=png_bytes(64, 64, 1), styles=[pb.StyleInput(image=png_bytes(32, 32, 2))],
                         content_size=512, style_size=32)
# Seconds of compute at 1024 px (2.2 s on 2 cores): a 0.5 s deadline expires mid-computation.
SLOWER = pb.StylizeRequest(content=png_bytes(64, 64, 1), styles=[pb.StyleInput(image=png_bytes(32, 32, 2))],
                           content_size=1024, style_size=32)


def test_overload_is_refused_at_once(start_server) -> None:
    server = start_server(workers=1, max_queue=1)
    stub = server.stub()
    first = ThreadPoolExecutor(1).submit(stub.Stylize, SLOW, timeout=120)
    wait_for(lambda: server.metric("styletransfer_inflight_requests") == 1)
    queued = ThreadPoolExecutor(1).submit(stub.Stylize, SLOW, timeout=120)
    wait_for(lambda: server.metric("styletransfer_queued_requests") == 1)
    assert code_of(lambda: stub.Stylize(SMALL, timeout=30)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert first.result().width == 512 and queued.result().width == 512
    assert server.metric("styletransfer_requests_total", method="Stylize", code="RESOURCE_EXHAUSTED",
                         transport="grpc") == 1


def test_deadline_passing_in_the_queue_drops_the_call_without_computing(start_server) -> None:
    server = start_server(workers=1, max_queue=4)
    stub = server.stub()
    first = ThreadPoolExecutor(1).submit(stub.Stylize, SLOW, timeout=120)
    wait_for(lambda: server.metric("styletransfer_inflight_requests") == 1)
    assert code_of(lambda: stub.Stylize(SMALL, timeout=0.05)) == grpc.StatusCode.DEADLINE_EXCEEDED
    first.result()
    wait_for(lambda: server.metric("styletransfer_queued_requests") == 0)
    # only the first call ever reached a worker: the expired one never did
    assert server.metric("styletransfer_queue_wait_seconds_count") == 1
    assert stub.Stylize(SMALL, timeout=30).width == 32  # and the server is healthy afterwards


def test_cancelled_call_stops_computing_and_frees_the_worker(start_server) -> None:
    server = start_server(workers=1, max_queue=4)
    stub = server.stub()
    call = stub.Stylize.future(SLOW, timeout=120)
    wait_for(lambda: server.metric("styletransfer_inflight_requests") == 1)
    call.cancel()
    wait_for(lambda: server.metric("styletransfer_computations_stopped_total", reason="cancelled") == 1)
    wait_for(lambda: server.metric("styletransfer_inflight_requests") == 0)
    assert stub.Stylize(SMALL, timeout=30).width == 32


def test_deadline_mid_computation_stops_it_and_is_counted_as_a_deadline(start_server, caplog) -> None:
    server = start_server(workers=1, max_queue=4)
    stub = server.stub()
    tries = 3  # gRPC's cancellation and the server's own deadline race: each try may be won by either
    for n in range(1, tries + 1):
        assert code_of(lambda: stub.Stylize(SLOWER, timeout=0.5)) == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda n=n: server.metric("styletransfer_computations_stopped_total", reason="deadline") == n,
                 timeout=120)
    assert server.metric("styletransfer_computations_stopped_total", reason="cancelled") == 0
    counted = {code: server.metric("styletransfer_requests_total", method="Stylize", code=code, transport="grpc")
               for code in ("DEADLINE_EXCEEDED", "CANCELLED")}
    assert counted == {"DEADLINE_EXCEEDED": tries, "CANCELLED": 0}
    assert stub.Stylize(SMALL, timeout=30).width == 32
    gc.collect()  # asyncio reports an unretrieved future exception when the future is collected
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


@pytest.mark.parametrize("workers, threads", [(0, 0), (2, 0), (1, 3)])
def test_thread_plan_never_oversubscribes(workers: int, threads: int) -> None:
    import os

    from server.limits import plan_threads

    cores = len(os.sched_getaffinity(0))
    w, t = plan_threads(workers, threads, "cpu")
    assert w == (workers or 1)
    assert t == (threads or max(1, cores // w))
    assert plan_threads(0, 0, "cuda")[0] == 2
