"""Metrics that must tell the truth: jobs_current goes back to 0 (no phantom jobs); model_info lists every model."""

from __future__ import annotations

from pathlib import Path

from model.weights import random_decoder_state, save_decoder_checkpoint
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


def test_model_info_lists_every_served_model_and_again_after_a_restart(start_server, tmp_path: Path) -> None:
    server = start_server()
    registry = server.server.runtime.models
    checkpoint = tmp_path / "decoder.safetensors"
    save_decoder_checkpoint(checkpoint, random_decoder_state(1), encoder_sha256=registry.default.info.encoder_sha256)
    registry.register("avatars", checkpoint, {"steps": "12"})
    labels = {"device": "cpu", "dtype": "float32", "untrained": "true"}
    assert server.metric("styletransfer_model_info", model="default", **labels) == 1
    assert server.metric("styletransfer_model_info", model="avatars", **labels) == 1
    server.stop()
    restarted = start_server()  # the same data directory: the trained model is served without being used first
    assert restarted.metric("styletransfer_model_info", model="avatars", **labels) == 1
