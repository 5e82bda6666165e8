"""One-off torch work must not leave an OpenMP pool behind (server/threads.py says why that costs 10%)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from server.threads import run_in_own_thread
from tests.helpers import wait_for


def _thread_ids() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def _parallel_work() -> float:
    assert torch.get_num_threads() == 2
    return float(torch.ones(1 << 24).mul(2).sum())  # large enough for OpenMP to split it


def test_own_thread_takes_its_openmp_pool_with_it() -> None:
    run_in_own_thread(_parallel_work, name="warm-up", threads=2)  # torch's first parallel op starts a helper thread
    before = _thread_ids()
    assert run_in_own_thread(_parallel_work, name="probe", threads=2) == 2.0 * (1 << 24)
    wait_for(lambda: _thread_ids() <= before, timeout=60)  # pool threads exit just after their master
    # The contrast: the same work on a thread that lives on leaves that thread and its pool's worker behind.
    with ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(2,)) as pool:
        pool.submit(_parallel_work).result()
        assert len(_thread_ids() - before) >= 2


def test_own_thread_reraises_and_names_the_thread() -> None:
    names = []

    def fail() -> None:
        names.append(threading.current_thread().name)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run_in_own_thread(fail, name="job-1234")
    assert names == ["job-1234"]
