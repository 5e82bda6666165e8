"""Job metrics that tell the truth (jobs_current back to 0, model_info lists every model), and job leases that a
busy machine cannot starve."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from server.jobs.manager import JOB_NICENESS, JobContext, JobManager
from server.jobs.sqlite_store import SQLiteJobStore
from server.jobs.store import CANCELLED, QUEUED, SUCCEEDED
from server.metrics import Metrics
from tests.helpers import install_decoder, wait_for


def _current(metrics: Metrics, kind: str, state: str) -> float | None:
    return metrics.registry.get_sample_value("styletransfer_jobs_current", {"kind": kind, "state": state})


def test_jobs_current_returns_to_zero_when_the_last_job_leaves_a_state(tmp_path: Path) -> None:
    metrics = Metrics()
    manager = JobManager(SQLiteJobStore(tmp_path / "jobs.db"), tmp_path / "jobs", metrics, workers=0,
                         lease_seconds=30, retention_hours=0, max_queued=10)
    job = manager.submit("GATYS", b"")
    manager.refresh_gauges()
    assert _current(metrics, "GATYS", QUEUED) == 1
    manager.cancel(job.id)
    manager.refresh_gauges()
    assert _current(metrics, "GATYS", QUEUED) == 0
    assert _current(metrics, "GATYS", CANCELLED) == 1
    assert metrics.registry.get_sample_value("styletransfer_job_queue_length") == 0


def test_model_info_lists_every_served_model_and_again_after_a_restart(start_server, tmp_path: Path) -> None:
    server = start_server()
    registry = server.server.runtime.models
    install_decoder(registry, "avatars", registry.default.encoder_sha256, tmp_path, {"steps": "12"})
    labels = {"family": "adain", "device": "cpu", "dtype": "float32", "untrained": "true"}
    assert server.metric("styletransfer_model_info", model="default", version="random", **labels) == 1
    assert server.metric("styletransfer_model_info", model="avatars", version="avatars", **labels) == 1
    server.stop()
    restarted = start_server()  # the same data directory: the trained model is served without being used first
    assert restarted.metric("styletransfer_model_info", model="avatars", version="avatars", **labels) == 1


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class _RecordingStore(SQLiteJobStore):
    """Records the CPU priority of the thread that renews a lease."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.heartbeat_niceness: list[int] = []
        self.renewed = threading.Event()

    def heartbeat(self, *args, **kwargs):
        self.heartbeat_niceness.append(_niceness())
        self.renewed.set()
        return super().heartbeat(*args, **kwargs)


def test_only_the_job_runs_at_low_priority_its_lease_renewals_do_not(tmp_path: Path) -> None:
    """A heartbeat at nice 19 starves on a busy machine and its lease expires under a job that is still running."""
    store = _RecordingStore(tmp_path / "jobs.db")
    base = _niceness()
    seen: dict[str, int] = {}

    def runner(ctx: JobContext) -> dict:
        seen["job"] = _niceness()
        ctx.report(1, 1, 0.0, {})
        assert store.renewed.wait(60)  # a bound for a hang, not a budget
        return ctx.write_result(b"done", "image/png", 1, 1)

    manager = JobManager(store, tmp_path / "jobs", Metrics(), workers=1, lease_seconds=30, retention_hours=0,
                         max_queued=10, runners={"GATYS": runner})
    manager.start(recover_all_running=True)
    try:
        job = manager.submit("GATYS", b"")
        wait_for(lambda: store.get(job.id).state == SUCCEEDED, timeout=120)
    finally:
        asyncio.run(manager.stop(5))
    assert seen["job"] == min(19, base + JOB_NICENESS)
    assert store.heartbeat_niceness and set(store.heartbeat_niceness) == {base}
