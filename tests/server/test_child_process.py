"""Child processes of jobs (torchrun): stderr drained while they run, lowest priority without preexec_fn; and the
GPU batcher's own errors reach clients as their status codes, not INTERNAL."""

from __future__ import annotations

import inspect
import os
import sys
import threading

import grpc
import pytest

from model.errors import Cancelled
from server import batcher
from server.errors import status_for
from server.jobs import train_runner
from server.jobs.train_runner import CHILD_NICENESS, run_child

CHATTY = ("import sys\n"
          "sys.stderr.write('warning: noisy library\\n' * 100_000)\n"  # 2.3 MB: 35 times a pipe's buffer
          "sys.stderr.flush()\n"
          "print('{\"progress\": 1}', flush=True)\n")


def _run_bounded(args: list[str], lines: list[str], should_stop=lambda: False) -> BaseException | None:
    """run_child in a thread; a child that blocks on a full pipe would never return (the join bound catches it)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_child(args, lines.append, should_stop, name="child")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the child blocked: its stderr was not drained"
    return errors[0] if errors else None


def test_a_chatty_child_does_not_block_and_its_stdout_is_followed() -> None:
    lines: list[str] = []
    assert _run_bounded([sys.executable, "-c", CHATTY], lines) is None
    assert lines == ['{"progress": 1}\n']


def test_a_failing_child_reports_its_last_stderr_lines() -> None:
    error = _run_bounded([sys.executable, "-c", "import sys; sys.stderr.write('boom: no dataset\\n'); sys.exit(3)"],
                         [])
    assert isinstance(error, RuntimeError) and "exited with 3" in str(error) and "boom: no dataset" in str(error)


def test_the_child_runs_at_the_lowest_priority_without_a_preexec_fn() -> None:
    # preexec_fn runs Python between fork and exec: unsafe in a threaded process (it can deadlock on a lock).
    assert "preexec_fn=" not in inspect.getsource(train_runner)
    lines: list[str] = []
    assert _run_bounded([sys.executable, "-c", "import os; print(os.nice(0))"], lines) is None
    assert int(lines[0]) == min(19, os.nice(0) + CHILD_NICENESS)


def test_a_stop_request_ends_the_child() -> None:
    ticking = "import time\nwhile True:\n print('tick', flush=True)\n time.sleep(0.01)"
    error = _run_bounded([sys.executable, "-c", ticking], [], should_stop=lambda: True)
    assert isinstance(error, Cancelled)


@pytest.mark.parametrize(("exc", "code"), [(batcher.DeadlineExpired("deadline passed while waiting for a batch"),
                                            grpc.StatusCode.DEADLINE_EXCEEDED),
                                           (batcher.BatcherClosed("closed"), grpc.StatusCode.UNAVAILABLE)])
def test_the_batchers_errors_map_to_their_status_codes(exc: Exception, code: grpc.StatusCode) -> None:
    assert status_for(exc)[0] == code
