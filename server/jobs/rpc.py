"""The job RPCs: SubmitGatys, Train, GetJob, ListJobs, CancelJob, WatchJob, GetJobResult (a servicer mixin)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from model.images import probe_image
from server.errors import FailedPrecondition, InvalidArgument, NotFound, server_stream, unary
from server.jobs.gatys_runner import validate_gatys
from server.jobs.manager import JobManager
from server.jobs.store import JobRecord
from server.jobs.train_runner import validate_train
from server.runtime import Runtime
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["JobRpcs", "job_message"]

WATCH_POLL_SECONDS = 0.2  # WatchJob polls the store, so progress made by other replicas shows too


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


class JobRpcs:
    runtime: Runtime

    @property
    def _jobs(self) -> JobManager:
        if self.runtime.jobs is None:
            raise FailedPrecondition("jobs are not enabled on this server")
        return self.runtime.jobs

    async def _record(self, job_id: str) -> JobRecord:
        record = await asyncio.to_thread(self._jobs.store.get, job_id) if job_id else None
        if record is None:
            raise NotFound(f"job {job_id!r} not found")
        return record

    @unary
    async def SubmitGatys(self, request: pb.GatysRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        validate_gatys(request, self.runtime.config, self.runtime.styles)
        record = await asyncio.to_thread(self._jobs.submit, "GATYS", request.SerializeToString())
        return job_message(record)

    @unary
    async def Train(self, request: pb.TrainRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        validate_train(request, self.runtime.config, self.runtime.models)
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
        state = pb.JobState.Name(request.state).removeprefix("JOB_STATE_") if request.state else None
        kind = pb.JobKind.Name(request.kind).removeprefix("JOB_KIND_") if request.kind else None
        try:
            records, token = await asyncio.to_thread(self._jobs.store.list, state=state, kind=kind,
                                                     page_size=request.page_size or 50,
                                                     page_token=request.page_token)
        except ValueError:
            raise InvalidArgument("page_token is not a token this server issued") from None
        return pb.ListJobsResponse(jobs=[job_message(r) for r in records], next_page_token=token)

    @unary
    async def CancelJob(self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        record = await asyncio.to_thread(self._jobs.cancel, request.id) if request.id else None
        if record is None:
            raise NotFound(f"job {request.id!r} not found")
        return job_message(record)

    @server_stream
    async def WatchJob(self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Job]:
        record = await self._record(request.id)
        last = job_message(record)
        yield last
        while not record.terminal:
            await asyncio.sleep(WATCH_POLL_SECONDS)
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
