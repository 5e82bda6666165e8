"""Runs jobs from the store on worker threads, apart from (and at lower CPU priority than) the Stylize workers.

A worker claims a job with a lease, runs the runner registered for its kind, and a heartbeat thread renews the lease
and records progress while it runs. Cancel requests reach the runner through ``should_stop`` within one step.
Durability: job results and checkpoints are written atomically under ``<data-dir>/jobs/<id>/``; a job whose
worker died (SIGKILL, lost lease) is queued again and resumes from its last checkpoint, at most ``max_attempts``
times: a job that kills its worker or the process every time it runs (e.g. one that exhausts memory) is then FAILED
with the reason instead of taking the server down on every restart. On shutdown running jobs are put back in the
queue, not failed, and that hand-back is not counted as an attempt. Nothing accepted is lost.

The store may fail (disk full, a database restart): workers log, wait and retry, never die; ``on_store_health`` hears
when the store becomes unusable and usable again (the server turns the jobs' health NOT_SERVING meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import Cancelled
from model.files import PREVIEW_FILE, atomic_write
from server.errors import AlreadyExists, Overloaded
from server.jobs.store import (
    CANCELLED,
    FAILED,
    QUEUED,
    SUCCEEDED,
    JobRecord,
    JobStore,
    NameTaken,
    QueueFull,
    StoreUnavailable,
)
from server.metrics import Metrics
from server.threads import run_in_own_thread

__all__ = ["JobContext", "JobEvents", "JobManager", "Runner"]

log = logging.getLogger(__name__)
RESULT_FILE = "result"  # a finished job's image, in the job folder
STORE_RETRY_SECONDS = 1.0  # pause before retrying an unreachable job store
JOB_NICENESS = 19  # the lowest priority: Stylize keeps the CPU whenever it wants it
SWEEP_BATCH = 500  # jobs deleted per retention transaction (the sweep never holds every finished job at once)


@dataclass
class JobContext:
    """What a runner gets: the job, a folder, a stop check, and ways to report progress and save results."""

    job: JobRecord
    folder: Path
    should_stop: Callable[[], bool]
    _progress: dict = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)
    _first_step: int | None = None
    _dirty: threading.Event = field(default_factory=threading.Event)

    def report(self, step: int, total_steps: int, loss: float, losses: dict[str, float]) -> None:
        """Records progress; elapsed time adds up across attempts, the ETA extrapolates this attempt's rate."""
        if self._first_step is None:
            self._first_step = step - 1
        elapsed_here = time.monotonic() - self._started
        done_here = step - self._first_step
        eta = elapsed_here / done_here * (total_steps - step) if done_here > 0 else 0.0
        before = float(self.job.progress.get("elapsed_seconds", 0.0))  # earlier attempts' running time
        self._progress = {"step": step, "total_steps": total_steps, "loss": loss, "losses": dict(losses),
                          "elapsed_seconds": before + elapsed_here, "eta_seconds": eta}
        self._dirty.set()

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / "checkpoint"

    def save_checkpoint(self, data: bytes) -> None:
        self._write(self.checkpoint_path, data)

    def load_checkpoint(self) -> bytes | None:
        return self.checkpoint_path.read_bytes() if self.checkpoint_path.is_file() else None

    def save_preview(self, png: bytes) -> None:
        """The latest intermediate image (PNG), served by GetJobResult(preview=true) while the job runs."""
        self._write(self.folder / PREVIEW_FILE, png)

    def write_result(self, data: bytes, mime_type: str, width: int, height: int) -> dict:
        self._write(self.folder / RESULT_FILE, data)
        return {"path": str(self.folder / RESULT_FILE), "mime_type": mime_type, "width": width, "height": height}

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)


Runner = Callable[[JobContext], dict]


class JobEvents:
    """Wakes WatchJob streams (on the event loop) when this process changes a job (on its threads), so a stream
    waits instead of polling the store. Changes made by other replicas of a shared store are not seen here: streams
    also re-read the store after a fallback interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def notify(self, job_id: str) -> None:
        with self._lock:
            watchers = list(self._watchers.get(job_id, ()))
        for loop, event in watchers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set on every change of ``job_id`` while the block runs (register before reading the job, so no
        change between the read and the wait is missed)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._watchers.setdefault(job_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                watchers = self._watchers.get(job_id, set())
                watchers.discard(entry)
                if not watchers:
                    self._watchers.pop(job_id, None)


class JobManager:
    def __init__(self, store: JobStore, folder: Path, metrics: Metrics, *, workers: int, lease_seconds: float,
                 retention_hours: float, max_queued: int, max_attempts: int = 3,
                 runners: dict[str, Runner] | None = None,
                 on_store_health: Callable[[bool], None] | None = None) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self._on_store_health = on_store_health
        self._store_ok: bool | None = None
        self.folder = folder
        self.metrics = metrics
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.retention_seconds = retention_hours * 3600
        self.max_queued = max_queued
        self.runners: dict[str, Runner] = dict(runners or {})
        self.worker_id = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self.events = JobEvents()
        self._gauge_keys: set[tuple[str, str]] = set()  # (kind, state) series of jobs_current set so far

    def register(self, kind: str, runner: Runner) -> None:
        self.runners[kind] = runner

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start(self, *, recover_all_running: bool) -> None:
        """Starts workers; with an embedded store, jobs left RUNNING by a previous process are queued again."""
        if recover_all_running:
            recovered = self.store.requeue_expired(now=float("inf"))
            if recovered:
                log.info("re-queued %d job(s) left running by a previous process", len(recovered))
        for n in range(self.workers):
            self._spawn(self._worker_loop, f"job-worker-{n}")
        self._spawn(self._maintenance_loop, "job-maintenance")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    async def stop(self, grace: float) -> None:
        """Stops claiming; running jobs stop at their next step and go back to the queue."""
        self._stopping.set()
        with self._lock:
            for event in self._running.values():
                event.set()
        with self._wake:
            self._wake.notify_all()
        await asyncio.to_thread(self._join, grace)

    def _join(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- API used by the RPCs ---------------------------------------------------------------------------------

    def preview(self, job_id: str) -> bytes | None:
        """A job's latest intermediate image: the newest ``preview.png`` its runner keeps in the job folder or in a
        sub-folder it works in (training writes one at every checkpoint). Blocking: call in a thread."""
        folder = self.folder / job_id
        found: list[tuple[float, Path]] = []
        for path in (folder / PREVIEW_FILE, *folder.glob(f"*/{PREVIEW_FILE}")):
            with contextlib.suppress(FileNotFoundError):  # absent, or swept meanwhile
                found.append((path.stat().st_mtime, path))
        for _, path in sorted(found, reverse=True):
            with contextlib.suppress(FileNotFoundError):
                return path.read_bytes()
        return None

    def submit(self, kind: str, request: bytes, *, model_name: str = "") -> JobRecord:
        try:
            record = self.store.create(kind, request, model_name=model_name, max_queued=self.max_queued,
                                       now=time.time())
        except QueueFull as exc:
            raise Overloaded(str(exc)) from None
        except NameTaken as exc:
            raise AlreadyExists(str(exc)) from None
        self.metrics.jobs_transitions.labels(kind, QUEUED).inc()
        with self._wake:
            self._wake.notify()
        return record

    def cancel(self, job_id: str) -> JobRecord | None:
        record = self.store.request_cancel(job_id, now=time.time())
        with self._lock:
            event = self._running.get(job_id)
        if event is not None:
            event.set()
        self.events.notify(job_id)
        if record is not None and record.state == CANCELLED and record.attempts == 0:
            self.metrics.jobs_transitions.labels(record.kind, CANCELLED).inc()
        return record

    # --- workers ----------------------------------------------------------------------------------------------

    def _worker_loop(self) -> None:
        """Claims and runs jobs until the server stops; no error ends it (a dead worker would run nothing again).

        This thread and the heartbeats it starts keep normal priority: only the job's own thread is lowered (threads
        inherit their creator's), so a busy machine cannot starve the lease renewals into a spurious expiry."""
        while not self._stopping.is_set():
            try:
                self._work_once()
            except StoreUnavailable as exc:  # a job's lease runs out and a worker (maybe this one) runs it again
                log.warning("job store unusable: %s; retrying", exc)
                self._store_health(False)
                self._stopping.wait(STORE_RETRY_SECONDS)
            except Exception:
                log.exception("job worker error; retrying")
                self._stopping.wait(STORE_RETRY_SECONDS)

    def _work_once(self) -> None:
        job = self.store.claim(self.worker_id, tuple(self.runners), lease_seconds=self.lease_seconds, now=time.time())
        self._store_health(True)
        if job is None:
            with self._wake:
                self._wake.wait(timeout=0.5)
        elif job.attempts > self.max_attempts:
            self._give_up(job)
        else:
            self.events.notify(job.id)
            self._run(job)

    def _give_up(self, job: JobRecord) -> None:
        """A job claimed more than ``max_attempts`` times: each earlier attempt ended with its worker or the server
        dying (clean shutdowns are not counted), so running it again would most likely do the same."""
        reason = (f"stopped after {job.attempts - 1} attempts: each ended with its worker or the server dying "
                  "(e.g. out of memory); not retried again")
        log.error("job %s: %s", job.id, reason)
        self._end(job, FAILED, JobContext(job, self.folder / job.id, lambda: True), error=reason)

    @property
    def store_ok(self) -> bool | None:
        """Whether the store answered its last call (None before the first)."""
        return self._store_ok

    def _store_health(self, ok: bool) -> None:
        """Reports a change of the store's usability (not every call) to ``on_store_health``."""
        if ok != self._store_ok:
            self._store_ok = ok
            if self._on_store_health is not None:
                self._on_store_health(ok)

    def _run(self, job: JobRecord) -> None:
        stop = threading.Event()
        with self._lock:
            self._running[job.id] = stop
        ctx = JobContext(job, self.folder / job.id, stop.is_set)
        ctx.folder.mkdir(parents=True, exist_ok=True)
        beat = threading.Thread(target=self._heartbeat, args=(ctx, stop), name=f"heartbeat-{job.id[:8]}", daemon=True)
        beat.start()
        log.info("job %s (%s) started, attempt %d", job.id, job.kind, job.attempts)
        started = time.monotonic()
        try:
            # In a thread that ends with the job, so its OpenMP pool does not outlive it (server/threads.py).
            result = run_in_own_thread(lambda: _at_lowest_priority(self.runners[job.kind], ctx),
                                       name=f"job-{job.id[:8]}")
            self._end(job, SUCCEEDED, ctx, result=result)
        except Cancelled:
            if self._stopping.is_set() and not self._cancel_requested(job.id):
                self._flush(ctx)
                self.store.release(job.id, self.worker_id)
                self.events.notify(job.id)
                log.info("job %s put back in the queue (server stopping)", job.id)
            else:
                self._end(job, CANCELLED, ctx)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self._end(job, FAILED, ctx, error=f"{type(exc).__name__}: {exc}")
        finally:
            stop.set()
            beat.join(5)
            with self._lock:
                self._running.pop(job.id, None)
            self.metrics.forget_job(job.id, job.kind)
            self.metrics.job_duration.labels(job.kind).observe(time.monotonic() - started)

    def _cancel_requested(self, job_id: str) -> bool:
        record = self.store.get(job_id)
        return record is not None and record.cancel_requested

    def _flush(self, ctx: JobContext) -> None:
        if ctx._progress:
            self.store.heartbeat(ctx.job.id, self.worker_id, lease_seconds=self.lease_seconds, now=time.time(),
                                 progress=dict(ctx._progress))

    def _end(self, job: JobRecord, state: str, ctx: JobContext, *, error: str = "", result: dict | None = None) -> None:
        """Records the outcome; while the store is unreachable it retries for as long as the lease would hold."""
        deadline = time.monotonic() + self.lease_seconds
        while True:
            try:
                self._flush(ctx)
                finished = self.store.finish(job.id, self.worker_id, state=state, now=time.time(), error=error,
                                             result=result)
                break
            except StoreUnavailable as exc:
                self._store_health(False)
                if time.monotonic() > deadline:
                    log.error("job %s: could not record %s (%s); it will run again elsewhere", job.id, state, exc)
                    return
                time.sleep(STORE_RETRY_SECONDS)
        self._store_health(True)
        self.events.notify(job.id)
        if finished:
            ctx.checkpoint_path.unlink(missing_ok=True)  # only a running job resumes from it
            self.metrics.jobs_transitions.labels(job.kind, state).inc()
            log.info("job %s %s", job.id, state.lower())
        else:
            log.warning("job %s: lease lost before it finished; another worker owns it now", job.id)

    def _heartbeat(self, ctx: JobContext, stop: threading.Event) -> None:
        """Renews the lease and writes progress (at most ~5 times a second); sets ``stop`` when cancelled."""
        last = 0.0
        while not stop.is_set():
            ctx._dirty.wait(timeout=min(0.2, self.lease_seconds / 3))
            now = time.monotonic()
            if not ctx._dirty.is_set() and now - last < self.lease_seconds / 3:
                continue
            ctx._dirty.clear()
            last = now
            progress = dict(ctx._progress) if ctx._progress else None
            try:
                kept = self.store.heartbeat(ctx.job.id, self.worker_id, lease_seconds=self.lease_seconds,
                                            now=time.time(), progress=progress)
            except StoreUnavailable as exc:  # keep working: the lease may outlive a short outage
                log.warning("job %s: heartbeat failed (%s); retrying", ctx.job.id, exc)
                stop.wait(STORE_RETRY_SECONDS)
                ctx._dirty.set()
                continue
            if not kept:
                stop.set()
                return
            if progress:
                self.events.notify(ctx.job.id)
                self._export_progress(ctx.job, progress)

    def _export_progress(self, job: JobRecord, progress: dict) -> None:
        kind = job.kind
        self.metrics.job_step.labels(job.id, kind).set(progress["step"])
        for term, value in {"total": progress["loss"], **progress["losses"]}.items():
            self.metrics.job_loss.labels(job.id, kind, term).set(value)

    # --- maintenance ------------------------------------------------------------------------------------------

    def _maintenance_loop(self) -> None:
        last_sweep = 0.0
        while not self._stopping.wait(1.0):
            try:
                for job_id in self.store.requeue_expired(now=time.time()):
                    log.warning("job %s lost its worker (lease expired); queued again", job_id)
                self.refresh_gauges()
                self._store_health(True)
                if self.retention_seconds > 0 and time.monotonic() - last_sweep > 60:
                    last_sweep = time.monotonic()
                    self.sweep(time.time() - self.retention_seconds)
            except StoreUnavailable as exc:
                log.warning("job store unusable: %s; retrying", exc)
                self._store_health(False)
            except Exception:
                log.exception("job maintenance failed; retrying")

    def refresh_gauges(self) -> None:
        """Sets jobs_current from the store's counts; a (kind, state) it no longer counts goes back to 0."""
        counts = self.store.counts()
        for kind, state in self._gauge_keys - counts.keys():
            self.metrics.jobs.labels(kind, state).set(0)
        self._gauge_keys |= counts.keys()
        for (kind, state), n in counts.items():
            self.metrics.jobs.labels(kind, state).set(n)
        self.metrics.job_queue_length.set(sum(n for (_, state), n in counts.items() if state == QUEUED))

    def sweep(self, cutoff: float) -> int:
        """Deletes finished jobs (and their files) that ended before ``cutoff``, in batches of ``SWEEP_BATCH`` ids
        (memory stays flat however many there are), then returns the freed space to the file system."""
        removed = 0
        while True:
            ids = self.store.delete_finished_before(cutoff, limit=SWEEP_BATCH)
            for job_id in ids:
                shutil.rmtree(self.folder / job_id, ignore_errors=True)
            removed += len(ids)
            if len(ids) < SWEEP_BATCH or self._stopping.is_set():
                break
        if removed:
            self.store.reclaim()
        return removed


def _at_lowest_priority(runner: Runner, ctx: JobContext) -> dict:
    """Runs a job at the lowest CPU priority (its OpenMP threads, started from this thread, inherit it)."""
    _lower_priority()
    return runner(ctx)


def _lower_priority() -> None:
    """Lowers this thread's CPU priority (Linux: per thread); threads it starts, e.g. OpenMP's, inherit it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)
    except (AttributeError, OSError) as exc:
        log.debug("could not lower job thread priority: %s", exc)
