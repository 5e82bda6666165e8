"""styletransfer_jobs_current follows the store: a state a job leaves goes back to 0 (no phantom jobs)."""

from __future__ import annotations

from pathlib import Path

from server.jobs.manager import JobManager
from server.jobs.sqlite_store import SQLiteJobStore
from server.jobs.store import CANCELLED, QUEUED
from server.metrics import Metrics


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
