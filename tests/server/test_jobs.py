"""Gatys jobs through a real server: progress, results, cancel, limits, pagination, and the durable store."""

from __future__ import annotations

import io
import threading

import grpc
import pytest
from PIL import Image

from server.jobs.sqlite_store import SQLiteJobStore
from server.jobs.store import QueueFull
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import png_bytes
from tests.server.test_limits import wait_for

CONTENT = png_bytes(64, 48, seed=1)
STYLE = png_bytes(64, 64, seed=2)


def gatys(iterations: int = 8, **fields) -> pb.GatysRequest:
    return pb.GatysRequest(content=CONTENT, styles=[pb.StyleInput(image=STYLE)], iterations=iterations, **fields)


def state(stub, job_id: str) -> int:
    return stub.GetJob(pb.GetJobRequest(id=job_id), timeout=10).state


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_watch_streams_progress_until_success_and_the_result_is_served(server) -> None:
    stub = server.stub()
    job = stub.SubmitGatys(gatys(10), timeout=30)
    assert job.state == pb.JOB_STATE_QUEUED and job.kind == pb.JOB_KIND_GATYS
    updates = list(stub.WatchJob(pb.WatchJobRequest(id=job.id), timeout=300))
    steps = [u.progress.step for u in updates]
    assert steps == sorted(steps) and updates[-1].state == pb.JOB_STATE_SUCCEEDED
    assert updates[-1].progress.step == updates[-1].progress.total_steps == 10
    losses = [u.progress.loss for u in updates if u.progress.step]
    assert losses[-1] < losses[0]  # the optimisation made progress
    assert set(updates[-1].progress.losses) == {"content", "style", "tv"}
    result = stub.GetJobResult(pb.GetJobResultRequest(id=job.id), timeout=30)
    assert result.mime_type == "image/png" and (result.width, result.height) == (64, 48)
    assert Image.open(io.BytesIO(result.image)).size == (64, 48)
    assert server.metric("styletransfer_jobs_total", kind="GATYS", state="SUCCEEDED") == 1


def test_cancel_queued_and_running_jobs(start_server) -> None:
    server = start_server(job_workers=1)
    stub = server.stub()
    running = stub.SubmitGatys(gatys(2000), timeout=30)
    queued = stub.SubmitGatys(gatys(5), timeout=30)
    wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=running.id)).progress.step > 0)
    assert code_of(lambda: stub.GetJobResult(pb.GetJobResultRequest(id=running.id))) == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert stub.CancelJob(pb.CancelJobRequest(id=queued.id)).state == pb.JOB_STATE_CANCELLED
    stub.CancelJob(pb.CancelJobRequest(id=running.id))
    wait_for(lambda: state(stub, running.id) == pb.JOB_STATE_CANCELLED, timeout=30)
    assert stub.CancelJob(pb.CancelJobRequest(id=running.id)).state == pb.JOB_STATE_CANCELLED  # unchanged
    assert code_of(lambda: stub.CancelJob(pb.CancelJobRequest(id="nope"))) == grpc.StatusCode.NOT_FOUND


def test_limits(start_server) -> None:
    server = start_server(job_workers=1, max_queued_jobs=1, gatys_max_iterations=100, gatys_max_pixels=64 * 64)
    stub = server.stub()
    assert code_of(lambda: stub.SubmitGatys(gatys(101))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.SubmitGatys(gatys(5, size=128))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.SubmitGatys(pb.GatysRequest(content=CONTENT))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.SubmitGatys(gatys(5, style_loss="fancy"))) == grpc.StatusCode.INVALID_ARGUMENT
    running = stub.SubmitGatys(gatys(100))
    wait_for(lambda: state(stub, running.id) == pb.JOB_STATE_RUNNING)
    stub.SubmitGatys(gatys(5))  # fills the queue of one
    assert code_of(lambda: stub.SubmitGatys(gatys(5))) == grpc.StatusCode.RESOURCE_EXHAUSTED
    stub.CancelJob(pb.CancelJobRequest(id=running.id))


def test_list_jobs_pages_and_filters(start_server) -> None:
    server = start_server(job_workers=1)
    stub = server.stub()
    blocker = stub.SubmitGatys(gatys(2000))
    ids = [stub.SubmitGatys(gatys(3)).id for _ in range(4)]
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


def test_store_claims_each_job_exactly_once(tmp_path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.db")
    for _ in range(30):
        store.create("GATYS", b"r", model_name="", max_queued=100, now=1.0)
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        own = SQLiteJobStore(tmp_path / "jobs.db")  # separate connections, as separate processes would have
        while (job := own.claim(f"w{n}", ("GATYS",), lease_seconds=60, now=2.0)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 30 == len(set(claimed))
    with pytest.raises(QueueFull):
        for _ in range(200):
            store.create("GATYS", b"r", model_name="", max_queued=5, now=3.0)


def test_store_requeues_expired_leases_and_respects_ownership(tmp_path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job = store.create("GATYS", b"r", model_name="", max_queued=10, now=1.0)
    assert store.claim("a", ("GATYS",), lease_seconds=10, now=2.0).id == job.id
    assert store.heartbeat(job.id, "a", lease_seconds=10, now=5.0, progress={"step": 3})
    assert store.requeue_expired(now=14.0) == []  # renewed until 15
    assert store.requeue_expired(now=16.0) == [job.id]
    assert not store.heartbeat(job.id, "a", lease_seconds=10, now=16.5)  # "a" lost it
    again = store.claim("b", ("GATYS",), lease_seconds=10, now=17.0)
    assert again.attempts == 2 and again.progress == {"step": 3}
    assert not store.finish(job.id, "a", state="SUCCEEDED", now=18.0)
    assert store.finish(job.id, "b", state="SUCCEEDED", now=18.0)
    assert [r.id for r in store.delete_finished_before(19.0)] == [job.id]
