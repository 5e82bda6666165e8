"""Admission, overload, deadlines and cancellation on a server with one worker, whose model holds each call until
the test lets it go."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import Gate, RunningServer, code_of, png_bytes, wait_for

SMALL = pb.StylizeRequest(content=png_bytes(32, 32, 1), styles=[pb.StyleInput(image=png_bytes(32, 32, 2))],
                          style_size=32)
STOPPED = "styletransfer_computations_stopped_total"


@pytest.fixture
def held(start_server, random_model) -> Iterator[tuple[RunningServer, Gate]]:
    """A server with one worker and room for one call in its queue, whose model holds every call until the test
    releases it (no machine is too fast or too slow for these tests)."""
    model = Gate(random_model)
    server = start_server(models=[model], workers=1, max_queue=1)
    yield server, model
    model.release_all()  # nothing stays held when the server stops


def test_overload_is_refused_at_once(held) -> None:
    server, model = held
    stub = server.stub()
    first = ThreadPoolExecutor(1).submit(stub.Stylize, SMALL, timeout=120)
    model.wait_entered()
    queued = ThreadPoolExecutor(1).submit(stub.Stylize, SMALL, timeout=120)
    wait_for(lambda: server.metric("styletransfer_queued_requests") == 1)
    assert code_of(lambda: stub.Stylize(SMALL, timeout=30)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    model.release_all()
    assert first.result().width == 32 and queued.result().width == 32
    assert server.metric("styletransfer_requests_total", method="Stylize", code="RESOURCE_EXHAUSTED",
                         transport="grpc") == 1


def test_deadline_passing_in_the_queue_drops_the_call_without_computing(held) -> None:
    server, model = held
    stub = server.stub()
    first = ThreadPoolExecutor(1).submit(stub.Stylize, SMALL, timeout=120)
    model.wait_entered()
    assert code_of(lambda: stub.Stylize(SMALL, timeout=0.05)) == grpc.StatusCode.DEADLINE_EXCEEDED
    model.release_all()
    first.result()
    wait_for(lambda: server.metric("styletransfer_queued_requests") == 0)
    # only the first call ever reached a worker: the expired one never did
    assert server.metric("styletransfer_queue_wait_seconds_count") == 1 and model.entered == 1
    assert stub.Stylize(SMALL, timeout=30).width == 32  # and the server is healthy afterwards


def test_cancelled_call_stops_computing_and_frees_the_worker(held) -> None:
    server, model = held
    stub = server.stub()
    call = stub.Stylize.future(SMALL, timeout=120)
    model.wait_entered()
    call.cancel()
    wait_for(lambda: server.metric("styletransfer_computations_stopped_total", reason="cancelled") == 1)
    wait_for(lambda: server.metric("styletransfer_inflight_requests") == 0)
    model.release_all()
    assert stub.Stylize(SMALL, timeout=30).width == 32


def test_deadline_mid_computation_stops_it_and_is_counted_as_a_deadline(held, caplog) -> None:
    server, model = held
    stub = server.stub()
    # gRPC's cancellation and the server's own deadline race: each call may be won by either, and both must count
    # as a deadline. A call held by the model ends only by its deadline; one that had not reached the model by then
    # (a very busy machine) is dropped from the queue instead and tried again.
    stopped = 0
    for _ in range(10):
        before = model.entered
        assert code_of(lambda: stub.Stylize(SMALL, timeout=1)) == grpc.StatusCode.DEADLINE_EXCEEDED
        if model.entered > before:
            stopped += 1
            wait_for(lambda n=stopped: server.metric(STOPPED, reason="deadline") == n, timeout=120)
        if stopped == 3:
            break
    assert stopped == 3
    assert server.metric(STOPPED, reason="cancelled") == 0
    counted = {code: server.metric("styletransfer_requests_total", method="Stylize", code=code, transport="grpc")
               for code in ("DEADLINE_EXCEEDED", "CANCELLED")}
    assert counted["CANCELLED"] == 0 and counted["DEADLINE_EXCEEDED"] >= 3
    model.release_all()
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
