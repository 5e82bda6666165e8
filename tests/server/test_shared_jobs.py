"""Two server processes on one PostgreSQL job store and one data directory: each job runs once, and a job whose
worker is SIGKILLed is finished by the other replica."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import free_port, gatys_request, random_weights_args, server_process, wait_for

pytestmark = pytest.mark.slow  # two server processes and PostgreSQL

# Waits are on conditions; their bounds only catch a hang, so they are generous (a loaded 2-core machine runs these
# several times slower than an idle one).
BOUND = 600
# Two server processes start (torch imports, model set-up) and run jobs: minutes on a busy machine, so the suite's
# per-test limit (5 min) is raised for these; it stays a bound for a hang.
SLOW = pytest.mark.timeout(1800)


def starts(log: Path) -> list[tuple[str, int]]:
    """(job id, attempt) of every job this replica started, from its log."""
    return [(m[1], int(m[2])) for m in re.finditer(r"job (\w+) \(GATYS\) started, attempt (\d+)", log.read_text())]


def replicas(stack: ExitStack, tmp_path: Path, url: str, lease: float) -> list[tuple]:
    """Two server processes on one store and data directory: (process, stub, log) each."""
    data = tmp_path / "shared-data"
    flags = ("--job-store", url, "--job-lease-seconds", str(lease), "--job-retention-hours", "0",
             "--gatys-checkpoint-every", "5")
    nodes = []
    for name in ("a", "b"):
        port, log = free_port(), tmp_path / f"{name}.log"
        node = stack.enter_context(server_process(random_weights_args(data, port, *flags), port, log, timeout=BOUND))
        nodes.append((node.proc, node.stub, log))
    return nodes


@SLOW
def test_two_replicas_never_run_the_same_job_twice(tmp_path: Path, postgres) -> None:
    with ExitStack() as stack:
        # A long lease: nothing here needs one to expire, so no slow heartbeat can make a job run twice.
        (_, stub_a, log_a), (_, stub_b, log_b) = replicas(stack, tmp_path, postgres.new_database(), lease=60)
        ids = [(stub_a if i % 2 else stub_b).SubmitGatys(gatys_request(4), timeout=30).id for i in range(6)]

        def all_done() -> bool:
            return all(stub_b.GetJob(pb.GetJobRequest(id=i), timeout=10).state == pb.JOB_STATE_SUCCEEDED
                       for i in ids)

        wait_for(all_done, timeout=BOUND)
        ran_a, ran_b = starts(log_a), starts(log_b)
        runs = Counter(job for job, _ in ran_a + ran_b)
        assert runs == Counter(ids)  # every job started exactly once, on one replica
        assert ran_a and ran_b  # and both replicas took work from the shared queue
        assert all(stub_a.GetJob(pb.GetJobRequest(id=i)).attempts == 1 for i in ids)
        by_a = ran_a[0][0]  # a result written by one replica is served by the other (shared data directory)
        assert stub_b.GetJobResult(pb.GetJobResultRequest(id=by_a), timeout=30).image[:4] == b"\x89PNG"
        listed = stub_a.ListJobs(pb.ListJobsRequest(page_size=100), timeout=10).jobs
        assert {j.id for j in listed} == set(ids)


@SLOW
def test_a_job_whose_worker_is_killed_is_finished_by_the_other_replica(tmp_path: Path, postgres) -> None:
    with ExitStack() as stack:
        nodes = replicas(stack, tmp_path, postgres.new_database(), lease=3)  # the survivor waits this out
        stub = nodes[0][1]
        job = stub.SubmitGatys(gatys_request(60), timeout=30)
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=job.id)).progress.step >= 12, timeout=BOUND)
        owner = next(n for n in nodes if (job.id, 1) in starts(n[2]))
        survivor = next(n for n in nodes if n is not owner)
        owner[0].send_signal(signal.SIGKILL)
        owner[0].wait()
        wait_for(lambda: survivor[1].GetJob(pb.GetJobRequest(id=job.id)).state == pb.JOB_STATE_SUCCEEDED,
                 timeout=BOUND)
        done = survivor[1].GetJob(pb.GetJobRequest(id=job.id))
        assert done.attempts == 2 and done.progress.step == 60
        assert (job.id, 2) in starts(survivor[2])
        assert "lost its worker (lease expired)" in survivor[2].read_text()


def test_a_replica_without_job_workers_leaves_jobs_to_the_others(start_server, postgres, tmp_path: Path) -> None:
    url, data = postgres.new_database(), str(tmp_path / "shared")
    front = start_server(job_store=url, job_workers=0, data_dir=data)
    job = front.stub().SubmitGatys(gatys_request(4), timeout=30)
    time.sleep(2)  # several claim intervals: nobody may take it
    assert front.stub().GetJob(pb.GetJobRequest(id=job.id)).state == pb.JOB_STATE_QUEUED
    start_server(job_store=url, job_workers=1, data_dir=data)
    wait_for(lambda: front.stub().GetJob(pb.GetJobRequest(id=job.id)).state == pb.JOB_STATE_SUCCEEDED,
             timeout=BOUND)
