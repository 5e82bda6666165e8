"""The dynamic batcher: batch formation, ordering, deadlines, cancellation and error isolation (CPU, no model)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from server.batcher import BatcherClosed, DeadlineExpired, DynamicBatcher


class Recorder:
    """A run_batch that records each batch and can be held on a gate so requests pile up behind it."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, payloads: Sequence[tuple[str, int]]) -> list[int | BaseException]:
        self.started.set()
        self.gate.wait(5)
        self.batches.append(list(payloads))
        return [ValueError(f"bad {n}") if n < 0 else n * 10 for _, n in payloads]


def make(recorder: Recorder, *, max_batch_size: int = 4, max_delay: float = 0.05) -> DynamicBatcher:
    return DynamicBatcher(recorder, key=lambda p: p[0], max_batch_size=max_batch_size, max_delay=max_delay)


def hold_worker(recorder: Recorder, batcher: DynamicBatcher) -> None:
    """Occupies the worker thread with one request so the next ones queue up together."""
    recorder.gate.clear()
    batcher.submit(("warmup", 0))
    assert recorder.started.wait(5)


def test_same_key_requests_share_a_batch_up_to_the_limit() -> None:
    recorder = Recorder()
    batcher = make(recorder, max_batch_size=3)
    hold_worker(recorder, batcher)
    futures = [batcher.submit(("a", i)) for i in range(5)]
    recorder.gate.set()
    assert [f.result(5) for f in futures] == [0, 10, 20, 30, 40]
    batcher.close()
    assert [len(b) for b in recorder.batches[1:]] == [3, 2]


def test_keys_do_not_mix_and_the_oldest_request_goes_first() -> None:
    recorder = Recorder()
    batcher = make(recorder)
    hold_worker(recorder, batcher)
    futures = [batcher.submit(p) for p in [("b", 1), ("a", 2), ("b", 3), ("a", 4)]]
    recorder.gate.set()
    for f in futures:
        f.result(5)
    batcher.close()
    assert recorder.batches[1:] == [[("b", 1), ("b", 3)], [("a", 2), ("a", 4)]]


def test_a_lone_request_runs_after_max_delay() -> None:
    recorder = Recorder()
    batcher = make(recorder, max_batch_size=8, max_delay=0.01)
    assert batcher.submit(("a", 7)).result(5) == 70
    batcher.close()
    assert recorder.batches == [[("a", 7)]]


def test_error_stays_with_its_request() -> None:
    recorder = Recorder()
    batcher = make(recorder)
    hold_worker(recorder, batcher)
    good, bad = batcher.submit(("a", 1)), batcher.submit(("a", -1))
    recorder.gate.set()
    assert good.result(5) == 10
    with pytest.raises(ValueError, match="bad -1"):
        bad.result(5)
    batcher.close()


def test_a_failing_batch_is_retried_request_by_request() -> None:
    calls: list[int] = []

    def run(payloads: Sequence[int]) -> list[int]:
        calls.append(len(payloads))
        if 13 in payloads:
            raise RuntimeError("unlucky")
        return [p + 1 for p in payloads]

    gate = threading.Event()
    batcher: DynamicBatcher = DynamicBatcher(
        lambda ps: (gate.wait(5), run(ps))[1], key=lambda p: 0, max_batch_size=4, max_delay=0.05
    )
    first = batcher.submit(0)
    futures = [batcher.submit(p) for p in (1, 13, 2)]
    gate.set()
    assert first.result(5) == 1
    assert futures[0].result(5) == 2 and futures[2].result(5) == 3
    with pytest.raises(RuntimeError, match="unlucky"):
        futures[1].result(5)
    batcher.close()
    assert calls[-3:] == [1, 1, 1]


def test_expired_and_cancelled_requests_are_not_computed() -> None:
    now = [100.0]
    recorder = Recorder()
    batcher: DynamicBatcher = DynamicBatcher(
        recorder, key=lambda p: p[0], max_batch_size=4, max_delay=0.0, clock=lambda: now[0]
    )
    hold_worker(recorder, batcher)
    expired = batcher.submit(("a", 1), deadline=100.5)
    cancelled = batcher.submit(("a", 2))
    kept = batcher.submit(("a", 3), deadline=200.0)
    assert cancelled.cancel()
    now[0] = 101.0
    recorder.gate.set()
    with pytest.raises(DeadlineExpired):
        expired.result(5)
    assert kept.result(5) == 30
    batcher.close()
    assert [("a", 1)] not in recorder.batches and all(("a", 2) not in b for b in recorder.batches)


def test_close_fails_waiting_requests_and_refuses_new_ones() -> None:
    recorder = Recorder()
    batcher = make(recorder)
    hold_worker(recorder, batcher)
    waiting = batcher.submit(("a", 1))
    closer = threading.Thread(target=batcher.close)
    closer.start()
    with pytest.raises(BatcherClosed):
        waiting.result(5)
    recorder.gate.set()
    closer.join(5)
    with pytest.raises(BatcherClosed):
        batcher.submit(("a", 2))


def test_on_batch_reports_sizes() -> None:
    sizes: list[int] = []
    recorder = Recorder()
    batcher: DynamicBatcher = DynamicBatcher(
        recorder, key=lambda p: p[0], max_batch_size=2, max_delay=0.05, on_batch=sizes.append
    )
    hold_worker(recorder, batcher)
    futures = [batcher.submit(("a", i)) for i in range(3)]
    recorder.gate.set()
    for f in futures:
        f.result(5)
    batcher.close()
    assert sizes == [1, 2, 1]


@pytest.mark.parametrize("kwargs", [{"max_batch_size": 0, "max_delay": 0.0}, {"max_batch_size": 1, "max_delay": -1}])
def test_invalid_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(lambda ps: list(ps), key=lambda p: 0, **kwargs)
