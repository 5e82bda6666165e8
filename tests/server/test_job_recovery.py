"""Durability: SIGKILL the server mid-job and restart it on the same data directory."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import free_port, gatys_request, random_weights_args, server_process, wait_for

pytestmark = pytest.mark.slow  # server processes, started twice

CHECKPOINT_EVERY = ("--gatys-checkpoint-every", "5")


@pytest.mark.timeout(1800)  # a server process started twice and jobs run: minutes on a busy machine (a hang bound)
def test_sigkill_keeps_results_and_resumes_the_running_job(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    args = random_weights_args(data, port, *CHECKPOINT_EVERY)
    with server_process(args, port, tmp_path / "first.log", timeout=600) as node:
        proc, stub = node.proc, node.stub
        done = stub.SubmitGatys(gatys_request(4), timeout=30)
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=done.id)).state == pb.JOB_STATE_SUCCEEDED, timeout=600)
        before = stub.GetJobResult(pb.GetJobResultRequest(id=done.id)).image
        running = stub.SubmitGatys(gatys_request(400), timeout=30)
        queued = stub.SubmitGatys(gatys_request(3), timeout=30)
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=running.id)).progress.step >= 12, timeout=600)
        assert (data / "jobs" / running.id / "checkpoint").is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with server_process(args, port, tmp_path / "second.log", timeout=600) as node:
        stub = node.stub
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
