"""The job RPCs: SubmitGatys, Train, GetJob, ListJobs, CancelJob, WatchJob, GetJobResult (a servicer mixin)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from model.images import probe_image
from server.costs import shown
from server.errors import FailedPrecondition, InvalidArgument, NotFound, server_stream, unary
from server.jobs.gatys_runner import validate_gatys
from server.jobs.manager import JobManager
from server.jobs.store import JobRecord, StoreUnavailable
from server.jobs.train_runner import validate_train
from server.runtime import Runtime
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["JobRpcs", "job_message"]

# WatchJob wakes on this process's changes (JobEvents) and re-reads the store at least this often, so progress made by
# other replicas of a shared store shows too (1000 idle streams: 200 reads a second, not 5000).
WATCH_FALLBACK_SECONDS = 5.0
JOB_ID = re.compile(r"[0-9a-f]{32}")
MAX_PAGE_TOKEN = 256  # characters; the tokens this server issues are ~60


def _timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def job_message(record: JobRecord) -> pb.Job:
    p = record.progress
    progress = pb.JobProgress(step=int(p.get("step", 0)), total_steps=int(p.get("total_steps", 0)),
                              loss=float(p.get("loss", 0.0)), losses={k: float(v) for k, v in
                                                                      p.get("losses", {}).items()},
                              elapsed_seconds=float(p.get("elapsed_seconds", 0.0)),
                              eta_seconds=float(p.get("eta_seconds", 0.0)))
    return pb.Job(id=record.id, kind=pb.JobKind.Value(f"JOB_KIND_{record.kind}"),
                  state=pb.JobState.Value(f"JOB_STATE_{record.state}"), progress=progress,
                  create_time=_timestamp(record.create_time), start_time=_timestamp(record.start_time),
                  end_time=_timestamp(record.end_time), error=record.error, model_name=record.model_name,
                  attempts=record.attempts)


def _job_id(job_id: str) -> str:
    """A job id as the stores issue them (32 hex digits); anything else cannot exist, so it is not looked up."""
    if not JOB_ID.fullmatch(job_id):
        raise NotFound(f"job {shown(job_id)} not found")
    return job_id


def _enum_name(enum: Any, value: int, field: str, prefix: str) -> str | None:
    """An enum field's value as the store spells it (None when unset); unknown numbers are the client's fault."""
    if not value:
        return None
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        raise InvalidArgument(f"{field} {value} is not a known value") from None


class JobRpcs:
    runtime: Runtime

    @property
    def _jobs(self) -> JobManager:
        if self.runtime.jobs is None:
            if self.runtime.jobs_unavailable:
                raise StoreUnavailable(self.runtime.jobs_unavailable)
            raise FailedPrecondition("jobs are not enabled on this server")
        return self.runtime.jobs

    async def _record(self, job_id: str) -> JobRecord:
        record = await asyncio.to_thread(self._jobs.store.get, _job_id(job_id))
        if record is None:
            raise NotFound(f"job {shown(job_id)} not found")
        return record

    @unary
    async def SubmitGatys(self, request: pb.GatysRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        # (reads registered styles from disk: off the event loop)
        await asyncio.to_thread(validate_gatys, request, self.runtime.config, self.runtime.styles)
        record = await asyncio.to_thread(self._jobs.submit, "GATYS", request.SerializeToString())
        return job_message(record)

    @unary
    async def Train(self, request: pb.TrainRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        # (resolves dataset folders and model names on disk: off the event loop)
        await asyncio.to_thread(validate_train, request, self.runtime.config, self.runtime.models)
        record = await asyncio.to_thread(self._jobs.submit, "TRAIN", request.SerializeToString(),
                                         model_name=request.model_name)
        return job_message(record)

    @unary
    async def GetJob(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        return job_message(await self._record(request.id))

    @unary
    async def ListJobs(self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext) -> pb.ListJobsResponse:
        if request.page_size > 1000:
            raise InvalidArgument("page_size must be at most 1000")
        state = _enum_name(pb.JobState, request.state, "state", "JOB_STATE_")
        kind = _enum_name(pb.JobKind, request.kind, "kind", "JOB_KIND_")
        if len(request.page_token) > MAX_PAGE_TOKEN:
            raise InvalidArgument("page_token is not a token this server issued")
        try:
            records, token = await asyncio.to_thread(self._jobs.store.list, state=state, kind=kind,
                                                     page_size=request.page_size or 50,
                                                     page_token=request.page_token)
        except ValueError:
            raise InvalidArgument("page_token is not a token this server issued") from None
        return pb.ListJobsResponse(jobs=[job_message(r) for r in records], next_page_token=token)

    @unary
    async def CancelJob(self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        record = await asyncio.to_thread(self._jobs.cancel, _job_id(request.id))
        if record is None:
            raise NotFound(f"job {shown(request.id)} not found")
        return job_message(record)

    @server_stream
    async def WatchJob(self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Job]:
        with self._jobs.events.watch(request.id) as changed:
            record = await self._record(request.id)
            last = job_message(record)
            yield last
            while not record.terminal:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), WATCH_FALLBACK_SECONDS)
                changed.clear()
                record = await self._record(request.id)
                message = job_message(record)
                if message != last:
                    last = message
                    yield message

    async def _preview(self, record: JobRecord) -> pb.JobResult:
        data = await asyncio.to_thread(self._jobs.preview, record.id)
        if data is None:
            return pb.JobResult()
        width, height = probe_image(data, field="preview", max_pixels=self.runtime.config.max_image_pixels)
        return pb.JobResult(image=data, mime_type="image/png", width=width, height=height)

    @unary
    async def GetJobResult(self, request: pb.GetJobResultRequest, context: grpc.aio.ServicerContext
                           ) -> pb.JobResult:
        record = await self._record(request.id)
        if record.state != "SUCCEEDED" and request.preview:
            return await self._preview(record)
        if record.state != "SUCCEEDED":
            raise FailedPrecondition(f"job {record.id} is {record.state.lower()}; its result exists once it succeeds")
        result = record.result
        data = await asyncio.to_thread(Path(result["path"]).read_bytes)
        return pb.JobResult(image=data, mime_type=result["mime_type"], width=result["width"], height=result["height"])
