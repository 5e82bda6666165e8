"""Which threads run torch's parallel (OpenMP) work, and for how long.

PyTorch's Linux wheels use libgomp, which keeps a pool of OpenMP worker threads for each thread that has run a
parallel region, for as long as that thread lives. When the process holds more pooled threads than there are cores,
libgomp cuts the spin-wait at its barriers to almost nothing, so each layer's barrier becomes a futex sleep and
wake-up. On 2 cores a 256 px stylize on the inference worker took 156 to 168 ms once the main thread had a pool too,
against 144 to 149 ms without (about 20x more context switches). Hence:

- the main thread (the event loop) runs torch single-threaded, so it never gets a pool;
- the inference workers (:class:`server.limits.Scheduler`) are the only long-lived threads with pools;
- one-off torch work (loading a model, running a job) runs in a thread of its own that ends with the work and takes
  its pool with it (:func:`run_in_own_thread`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["run_in_own_thread", "single_threaded_torch"]

T = TypeVar("T")


def single_threaded_torch() -> None:
    """Makes torch ops on the calling thread run without OpenMP workers."""
    torch.set_num_threads(1)


def run_in_own_thread(fn: Callable[[], T], *, name: str, threads: int = 0) -> T:
    """Runs ``fn`` in a new thread with ``threads`` torch threads (0: one per core) and returns its result or raises
    its exception. The new thread inherits the caller's CPU priority."""
    outcome: list = []

    def target() -> None:
        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # re-raised in the caller
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
