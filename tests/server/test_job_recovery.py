"""Durability: SIGKILL the server mid-job and restart it on the same data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc
from tests.helpers import wait_for
from tests.server.test_jobs import gatys
from tests.server.test_lifecycle import free_port


@contextmanager
def server_process(data_dir: Path, port: int, *flags: str, log: Path | None = None
                   ) -> Iterator[tuple[subprocess.Popen, pb_grpc.StyleTransferStub]]:
    """A server in its own process (so it can be SIGKILLed), with extra ``flags``; its log goes to ``log``."""
    out = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--random-weights", "--host", "127.0.0.1", "--port", str(port),
         "--metrics-port", "0", "--data-dir", str(data_dir), "--gatys-checkpoint-every", "5", *flags],
        stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(channel)

    def serving() -> bool:
        try:
            return health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1
        except grpc.RpcError:
            return False

    try:
        wait_for(serving, timeout=600)
        yield proc, pb_grpc.StyleTransferStub(channel)
    finally:
        channel.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if log:
            out.close()


@pytest.mark.timeout(1800)  # a server process started twice and jobs run: minutes on a busy machine (a hang bound)
def test_sigkill_keeps_results_and_resumes_the_running_job(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    with server_process(data, port) as (proc, stub):
        done = stub.SubmitGatys(gatys(4), timeout=30)
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=done.id)).state == pb.JOB_STATE_SUCCEEDED, timeout=600)
        before = stub.GetJobResult(pb.GetJobResultRequest(id=done.id)).image
        running = stub.SubmitGatys(gatys(400), timeout=30)
        queued = stub.SubmitGatys(gatys(3), timeout=30)
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=running.id)).progress.step >= 12, timeout=600)
        assert (data / "jobs" / running.id / "checkpoint").is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with server_process(data, port) as (_, stub):
        assert stub.GetJobResult(pb.GetJobResultRequest(id=done.id)).image == before
        resumed_steps = []
        for update in stub.WatchJob(pb.WatchJobRequest(id=running.id), timeout=600):
            assert update.state in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
            if update.attempts == 2 and update.progress.step not in resumed_steps:
                resumed_steps.append(update.progress.step)
            if len(resumed_steps) >= 4:
                break
        # the second attempt continues from the last checkpoint (step 10 or later), never from the start (the
        # first value seen may still be the first attempt's last report, so order is not asserted)
        assert min(resumed_steps) >= 10
        stub.CancelJob(pb.CancelJobRequest(id=running.id))
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=queued.id)).state == pb.JOB_STATE_SUCCEEDED, timeout=600)
        job = stub.GetJob(pb.GetJobRequest(id=running.id))
        assert job.state == pb.JOB_STATE_CANCELLED and job.progress.step >= 10
