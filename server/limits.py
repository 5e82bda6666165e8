"""Admission and scheduling of Stylize work: a fixed pool of inference threads and a bounded wait queue.

- At most ``workers`` computations run at once, each with ``torch_threads`` intra-op threads, so the cores are never
  oversubscribed (a second concurrent forward pass on the same cores only adds cache thrash).
- At most ``max_queue`` calls wait; one more is refused with RESOURCE_EXHAUSTED at once rather than queued
  unboundedly (the caller can retry elsewhere).
- A call whose deadline passes while it waits is dropped without computing; a call that is cancelled, or whose
  deadline passes, mid-computation stops at the next layer (the model checks ``should_stop`` between layers), and
  its worker is released only when the thread really is free.
- The event loop only awaits futures: gRPC I/O never blocks on the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from model.errors import Cancelled
from model.network import StopCheck
from server.errors import DEADLINE_SLACK, DeadlineExpired, LimitReached, Overloaded, ShuttingDown
from server.metrics import Metrics

__all__ = ["Scheduler", "StreamAdmission", "Timed", "deadline_passed", "plan_threads"]

T = TypeVar("T")


@dataclass(frozen=True)
class Timed(Generic[T]):
    value: T
    queue_seconds: float
    compute_seconds: float


def plan_threads(workers: int, torch_threads: int, device_type: str) -> tuple[int, int]:
    """(workers, intra-op threads per worker): 1 worker using every core on CPU, 2 on CUDA unless configured."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = workers or (2 if device_type == "cuda" else 1)
    threads = torch_threads or max(1, cores // workers)
    return workers, threads


class Scheduler:
    def __init__(self, workers: int, threads_per_worker: int, max_queue: int, metrics: Metrics) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self._metrics = metrics
        self._threads = threads_per_worker
        # Admitted calls wait in the executor's own queue, so a worker that finishes takes the next call at once,
        # without a round trip through the event loop (which, with the cores busy, cost ~3 ms per call).
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="stylize", initializer=self._init_thread)
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._closed = False

    def _init_thread(self) -> None:
        torch.set_num_threads(self._threads)

    def close(self) -> None:
        """Refuses new work; work already admitted continues."""
        self._closed = True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def busy(self) -> int:
        return self._running + self._waiting

    async def run(
        self, fn: Callable[[StopCheck], T], *, deadline: float | None, cancelled: threading.Event,
        bounded: bool = True,
    ) -> Timed[T]:
        """Runs ``fn(should_stop)`` on a worker; ``deadline`` is a ``time.monotonic()`` instant or None.

        ``bounded=False`` waits whatever the queue's length: for callers bounded otherwise (a stream has one frame
        here at a time, and --stream-max-concurrent streams), whose work must not be refused midway."""
        if self._closed:
            raise ShuttingDown("server is shutting down")
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise DeadlineExpired("deadline passed before the call reached a worker")

        def should_stop() -> bool:
            return cancelled.is_set() or (deadline is not None and time.monotonic() > deadline)

        self._admit(bounded)
        queued_at = time.monotonic()
        started: list[float] = []

        def work() -> T:
            started.append(time.monotonic())
            self._move(waiting=-1, running=1)
            try:
                self._metrics.queue_wait.observe(started[0] - queued_at)
                return fn(should_stop)
            finally:
                self._move(running=-1)

        task = self._executor.submit(work)
        result = asyncio.wrap_future(task)
        try:
            value = await asyncio.wait_for(asyncio.shield(result), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            cancelled.set()  # a running call stops at its next layer and frees the worker when it does
            result.add_done_callback(_consume)  # its Cancelled outcome is expected: nobody awaits it any more
            if task.cancel():  # still waiting: it leaves the queue now and never computes
                self._move(waiting=-1)
            else:
                reason = "deadline" if deadline_passed(deadline) else "cancelled"
                task.add_done_callback(functools.partial(self._count_stop, reason))
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise DeadlineExpired("deadline passed " + ("during computation" if started else
                                                        "while waiting for a worker")) from None
        except Cancelled:
            expired = deadline_passed(deadline)
            self._metrics.stopped.labels("deadline" if expired else "cancelled").inc()
            if expired:
                raise DeadlineExpired("deadline passed during computation") from None
            raise
        return Timed(value, started[0] - queued_at, time.monotonic() - started[0])

    def _admit(self, bounded: bool) -> None:
        with self._lock:
            if bounded and self._running + self._waiting >= self.workers + self.max_queue:
                raise Overloaded(f"all {self.workers} workers busy and {self._waiting} calls waiting; retry later")
            self._waiting += 1
        self._metrics.queued.inc()

    def _move(self, *, waiting: int = 0, running: int = 0) -> None:
        """Updates the counts (from the event loop or a worker) and their gauges."""
        with self._lock:
            self._waiting += waiting
            self._running += running
        self._metrics.queued.inc(waiting)
        self._metrics.inflight.inc(running)

    def _count_stop(self, reason: str, task: Future) -> None:
        if not task.cancelled() and isinstance(task.exception(), Cancelled):
            self._metrics.stopped.labels(reason).inc()


class StreamAdmission:
    """Open streams: the --stream-max-concurrent bound, the active-streams gauge, and the drain signal (a stream
    waiting for its client's next message ends at once when the server drains). Used on the event loop only."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self._metrics = metrics
        self._open = 0
        self.closing = asyncio.Event()

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Holds one stream's place while the ``with`` block runs; LimitReached when all are taken."""
        if self.closing.is_set():
            raise ShuttingDown("server is shutting down")
        if self._open >= self.limit:
            raise LimitReached(f"{self._open} streams are open, the most this server allows "
                               f"(--stream-max-concurrent {self.limit}); retry later")
        self._open += 1
        self._metrics.streams_active.inc()
        try:
            yield
        finally:
            self._open -= 1
            self._metrics.streams_active.dec()

    def close(self) -> None:
        """Refuses new streams and tells open ones to end (server/app.py's drain)."""
        self.closing.set()


def deadline_passed(deadline: float | None) -> bool:
    """Whether a ``time.monotonic()`` deadline has passed, within ``server.errors.DEADLINE_SLACK``."""
    return deadline is not None and time.monotonic() >= deadline - DEADLINE_SLACK


def _consume(future: asyncio.Future) -> None:
    """Retrieves an abandoned future's outcome, so asyncio does not log "Future exception was never retrieved"."""
    if not future.cancelled():
        future.exception()
