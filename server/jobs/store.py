"""The job store interface: what the manager needs from any durable queue (SQLite embedded, PostgreSQL shared).

Semantics every implementation keeps:
- ``create`` commits the job before returning, and refuses (``QueueFull``) when ``max_queued`` jobs already wait,
  or (``NameTaken``) when a queued or running job already has its ``model_name``;
- a job that ends (``finish``, or a cancel while queued) drops its request bytes: only running jobs need them;
- ``claim`` moves the oldest QUEUED job of the given kinds to RUNNING for exactly one worker, with a lease that the
  worker renews (``heartbeat``); a job whose lease expires is put back in the queue by ``requeue_expired``
  (PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite: a write transaction);
- cancelling a QUEUED job ends it at once; cancelling a RUNNING one sets a flag its worker sees on its next
  heartbeat; terminal jobs never change again;
- ``list`` is newest first with an opaque page token.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["QUEUED", "RUNNING", "TERMINAL", "JobRecord", "JobStore", "NameTaken", "QueueFull", "StoreUnavailable",
           "decode_token", "encode_token", "list_filter", "page"]

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
KINDS = ("GATYS", "TRAIN")


class QueueFull(Exception):
    """``max_queued`` jobs are already waiting."""


class NameTaken(Exception):
    """A queued or running job already trains a model of this name (names are reserved at submit)."""


class StoreUnavailable(Exception):
    """The job store cannot be reached (a shared database is down or unreachable); the call may be retried."""


@dataclass
class JobRecord:
    id: str
    kind: str  # GATYS | TRAIN
    state: str  # QUEUED | RUNNING | SUCCEEDED | FAILED | CANCELLED
    request: bytes  # the serialized request message
    create_time: float
    progress: dict = field(default_factory=dict)  # step, total_steps, loss, losses, elapsed_seconds, eta_seconds
    start_time: float | None = None
    end_time: float | None = None
    error: str = ""
    model_name: str = ""
    attempts: int = 0
    cancel_requested: bool = False
    lease_owner: str = ""
    lease_expires: float = 0.0
    result: dict = field(default_factory=dict)  # path, mime_type, width, height

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


class JobStore(Protocol):
    def create(self, kind: str, request: bytes, *, model_name: str, max_queued: int, now: float) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def list(self, *, state: str | None, kind: str | None, page_size: int, page_token: str
             ) -> tuple[list[JobRecord], str]: ...

    def claim(self, worker: str, kinds: tuple[str, ...], *, lease_seconds: float, now: float) -> JobRecord | None: ...

    def heartbeat(self, job_id: str, worker: str, *, lease_seconds: float, now: float,
                  progress: dict | None = None) -> bool:
        """Renews the lease (and records progress); returns False when the worker lost the job or it was cancelled."""
        ...

    def finish(self, job_id: str, worker: str, *, state: str, now: float, error: str = "",
               result: dict | None = None) -> bool: ...

    def release(self, job_id: str, worker: str) -> None:
        """Puts a RUNNING job back in the queue (its worker is shutting down); progress is kept and the attempt is
        not counted (``attempts`` counts claims that did not end cleanly)."""
        ...

    def request_cancel(self, job_id: str, *, now: float) -> JobRecord | None: ...

    def requeue_expired(self, *, now: float) -> list[str]: ...

    def delete_finished_before(self, cutoff: float, *, limit: int = 500) -> list[str]:
        """Deletes up to ``limit`` jobs that ended before ``cutoff``; returns their ids (callers loop until fewer)."""
        ...

    def reclaim(self) -> None:
        """Returns the space of deleted rows to the file system where the database does not do it itself."""
        ...

    def counts(self) -> dict[tuple[str, str], int]: ...

    def close(self) -> None: ...


def list_filter(state: str | None, kind: str | None, page_token: str, mark: str) -> tuple[str, list]:
    """The WHERE clause (with ``mark`` as the driver's placeholder) and arguments of ``JobStore.list``, shared by the
    SQL stores so both page and filter alike."""
    where, args = ["1=1"], []
    if state:
        where.append(f"state = {mark}")
        args.append(state)
    if kind:
        where.append(f"kind = {mark}")
        args.append(kind)
    if page_token:
        created, job_id = decode_token(page_token)
        where.append(f"(create_time < {mark} OR (create_time = {mark} AND id < {mark}))")
        args += [created, created, job_id]
    return " AND ".join(where), args


def page(records: list[JobRecord], page_size: int) -> tuple[list[JobRecord], str]:
    """The first ``page_size`` of ``records`` (fetched one longer) and the token of the next page, if any."""
    token = encode_token(records[page_size - 1].create_time, records[page_size - 1].id) \
        if len(records) > page_size else ""
    return records[:page_size], token


def encode_token(create_time: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([create_time, job_id]).encode()).decode()


def decode_token(token: str) -> tuple[float, str]:
    """``encode_token``'s inverse; ValueError for anything else (odd shapes, nesting, non-finite times)."""
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        created = float(created)
    except (ValueError, TypeError, RecursionError):
        raise ValueError("not a page token") from None
    if not isinstance(job_id, str) or not math.isfinite(created):
        raise ValueError("not a page token")
    return created, job_id
