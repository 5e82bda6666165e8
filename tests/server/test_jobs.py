"""Gatys jobs through a real server: progress, results, cancel, limits, pagination, and the durable store."""

from __future__ import annotations

import io

import grpc
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import code_of, gatys_request, png_bytes, wait_for

CONTENT = png_bytes(64, 48, seed=1)
STYLE = png_bytes(64, 64, seed=2)


def state(stub, job_id: str) -> int:
    return stub.GetJob(pb.GetJobRequest(id=job_id), timeout=10).state


def test_watch_streams_progress_until_success_and_the_result_is_served(server) -> None:
    stub = server.stub()
    job = stub.SubmitGatys(gatys_request(10, num_scales=1), timeout=30)
    assert job.state == pb.JOB_STATE_QUEUED and job.kind == pb.JOB_KIND_GATYS
    updates = list(stub.WatchJob(pb.WatchJobRequest(id=job.id), timeout=300))
    steps = [u.progress.step for u in updates]
    assert steps == sorted(steps) and updates[-1].state == pb.JOB_STATE_SUCCEEDED
    assert updates[-1].progress.step == updates[-1].progress.total_steps == 10
    losses = [u.progress.loss for u in updates if u.progress.step]
    assert losses[-1] < losses[0]  # the optimisation made progress
    assert set(updates[-1].progress.losses) == {"content", "style", "spectrum", "tv"}
    result = stub.GetJobResult(pb.GetJobResultRequest(id=job.id), timeout=30)
    assert result.mime_type == "image/png" and (result.width, result.height) == (64, 48)
    assert Image.open(io.BytesIO(result.image)).size == (64, 48)
    assert server.metric("styletransfer_jobs_total", kind="GATYS", state="SUCCEEDED") == 1


def test_cancel_queued_and_running_jobs(start_server) -> None:
    server = start_server(job_workers=1)
    stub = server.stub()
    running = stub.SubmitGatys(gatys_request(2000), timeout=30)
    queued = stub.SubmitGatys(gatys_request(5), timeout=30)
    wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=running.id)).progress.step > 0)
    assert code_of(lambda: stub.GetJobResult(pb.GetJobResultRequest(id=running.id))) == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert stub.CancelJob(pb.CancelJobRequest(id=queued.id)).state == pb.JOB_STATE_CANCELLED
    stub.CancelJob(pb.CancelJobRequest(id=running.id))
    wait_for(lambda: state(stub, running.id) == pb.JOB_STATE_CANCELLED, timeout=300)
    assert stub.CancelJob(pb.CancelJobRequest(id=running.id)).state == pb.JOB_STATE_CANCELLED  # unchanged
    assert code_of(lambda: stub.CancelJob(pb.CancelJobRequest(id="nope"))) == grpc.StatusCode.NOT_FOUND


def test_limits(start_server) -> None:
    server = start_server(job_workers=1, max_queued_jobs=1, gatys_max_iterations=100, gatys_max_pixels=64 * 64)
    stub = server.stub()
    assert code_of(lambda: stub.SubmitGatys(gatys_request(101))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.SubmitGatys(gatys_request(5, size=128))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.SubmitGatys(pb.GatysRequest(content=CONTENT))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.SubmitGatys(gatys_request(5, style_loss="fancy"))) == grpc.StatusCode.INVALID_ARGUMENT
    running = stub.SubmitGatys(gatys_request(100))
    wait_for(lambda: state(stub, running.id) == pb.JOB_STATE_RUNNING)
    stub.SubmitGatys(gatys_request(5))  # fills the queue of one
    assert code_of(lambda: stub.SubmitGatys(gatys_request(5))) == grpc.StatusCode.RESOURCE_EXHAUSTED
    stub.CancelJob(pb.CancelJobRequest(id=running.id))


def test_list_jobs_pages_and_filters(start_server) -> None:
    server = start_server(job_workers=1)
    stub = server.stub()
    blocker = stub.SubmitGatys(gatys_request(2000))
    ids = [stub.SubmitGatys(gatys_request(3)).id for _ in range(4)]
    seen, token, pages = [], "", 0
    while True:
        reply = stub.ListJobs(pb.ListJobsRequest(page_size=2, page_token=token))
        seen += [j.id for j in reply.jobs]
        token, pages = reply.next_page_token, pages + 1
        if not token:
            break
    assert seen == [*reversed(ids), blocker.id] and pages == 3  # newest first
    wait_for(lambda: state(stub, blocker.id) == pb.JOB_STATE_RUNNING)
    running = stub.ListJobs(pb.ListJobsRequest(state=pb.JOB_STATE_RUNNING)).jobs
    assert [j.id for j in running] == [blocker.id]
    assert len(stub.ListJobs(pb.ListJobsRequest(kind=pb.JOB_KIND_TRAIN)).jobs) == 0
    stub.CancelJob(pb.CancelJobRequest(id=blocker.id))
