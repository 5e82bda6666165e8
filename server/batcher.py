"""Dynamic batching of requests that can share one forward pass, in the spirit of Triton's dynamic batcher.

On a GPU, one batch of N same-size images costs little more than one image, so waiting a few milliseconds for
companions raises throughput at a small latency cost. On a CPU the cores are already saturated by one image, so the
server leaves batching off there (``--batching auto``).

Rules:
- Requests are grouped by a key (the tensor shape, model and options that must match to share a pass). The oldest
  waiting request decides the next batch's key; later requests with that key join it, others keep their place.
- A batch is dispatched when it is full (``max_batch_size``) or when its oldest request has waited ``max_delay``.
- A request whose deadline passes while it waits, or whose caller cancelled it, is dropped without computing.
- ``run_batch`` returns one result or exception per request, so one bad request fails alone; if ``run_batch`` itself
  raises, the requests of that batch are retried one by one so the failure stays with the request that caused it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["BatcherClosed", "DeadlineExpired", "DynamicBatcher"]

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")


class DeadlineExpired(Exception):
    """The request's deadline passed before its batch ran."""


class BatcherClosed(Exception):
    """The batcher was closed before the request ran."""


@dataclass
class _Pending(Generic[P, R]):
    key: Hashable
    payload: P
    deadline: float | None
    enqueued: float
    future: Future[R] = field(default_factory=Future)


RunBatch = Callable[[Sequence[P]], Sequence["R | BaseException"]]


class DynamicBatcher(Generic[P, R]):
    """Collects submitted payloads into batches and runs them on one background thread."""

    def __init__(
        self,
        run_batch: RunBatch[P, R],
        *,
        key: Callable[[P], Hashable],
        max_batch_size: int,
        max_delay: float,
        on_batch: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_delay < 0:
            raise ValueError("max_delay must not be negative")
        self._run_batch = run_batch
        self._key = key
        self._max_batch_size = max_batch_size
        self._max_delay = max_delay
        self._on_batch = on_batch
        self._clock = clock
        self._queue: list[_Pending[P, R]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, payload: P, *, deadline: float | None = None) -> Future[R]:
        """Queues ``payload``; ``deadline`` is a ``clock()`` time after which it is dropped unrun."""
        item: _Pending[P, R] = _Pending(self._key(payload), payload, deadline, self._clock())
        with self._cond:
            if self._closed:
                raise BatcherClosed("batcher is closed")
            self._queue.append(item)
            self._cond.notify()
        return item.future

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self, timeout: float | None = None) -> None:
        """Stops taking requests, fails the ones still waiting, and joins the thread."""
        with self._cond:
            self._closed = True
            waiting, self._queue = self._queue, []
            self._cond.notify_all()
        for item in waiting:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(BatcherClosed("batcher closed before the request ran"))
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            live = self._start(batch)
            if live:
                self._dispatch(live)

    def _next_batch(self) -> list[_Pending[P, R]] | None:
        """Blocks until a batch is due (full, or its oldest request has waited max_delay); None when closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                if not self._queue:
                    self._cond.wait()
                    continue
                head = self._queue[0]
                same = [item for item in self._queue if item.key == head.key][: self._max_batch_size]
                due = head.enqueued + self._max_delay
                now = self._clock()
                if len(same) >= self._max_batch_size or now >= due:
                    taken = {id(item) for item in same}
                    self._queue = [item for item in self._queue if id(item) not in taken]
                    return same
                self._cond.wait(timeout=due - now)

    def _start(self, batch: list[_Pending[P, R]]) -> list[_Pending[P, R]]:
        """Marks requests running; drops the cancelled and fails the expired without computing them."""
        now = self._clock()
        live = []
        for item in batch:
            if not item.future.set_running_or_notify_cancel():
                continue
            if item.deadline is not None and now >= item.deadline:
                item.future.set_exception(DeadlineExpired("deadline passed while waiting for a batch"))
                continue
            live.append(item)
        return live

    def _dispatch(self, batch: list[_Pending[P, R]]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(batch))
        try:
            results = self._run_batch([item.payload for item in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} requests")
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            log.warning("batch of %d failed; retrying its requests one by one", len(batch))
            for item in batch:
                self._retry_alone(item)
            return
        for item, result in zip(batch, results, strict=True):
            _settle(item.future, result)

    def _retry_alone(self, item: _Pending[P, R]) -> None:
        try:
            (result,) = self._run_batch([item.payload])
        except Exception as exc:
            item.future.set_exception(exc)
            return
        _settle(item.future, result)


def _settle(future: Future[R], result: R | BaseException) -> None:
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
