"""The shared job store: one PostgreSQL table that several server replicas claim jobs from.

A job goes to exactly one worker: ``claim`` picks the oldest queued row with ``FOR UPDATE SKIP LOCKED`` inside the
same ``UPDATE``, so concurrent claimers skip each other's rows instead of waiting or double-claiming. A worker keeps
its job by renewing a lease; every replica's maintenance loop re-queues jobs whose lease ran out (their worker died),
and ``finish``/``heartbeat`` only succeed for the current lease owner, so a worker that lost its job cannot overwrite
the new owner's outcome. Results are files in the job folder, which replicas share (the same ``--data-dir`` volume).

Each thread holds its own connection (autocommit; multi-statement changes run in explicit transactions); a broken
connection is replaced on the next call, and database errors surface as :class:`StoreUnavailable`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from server.jobs.store import (
    QUEUED,
    RUNNING,
    TERMINAL,
    JobRecord,
    NameTaken,
    QueueFull,
    StoreUnavailable,
    list_filter,
    page,
)

__all__ = ["PostgresJobStore"]

TABLE = "styletransfer_jobs"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    request BYTEA NOT NULL,
    create_time DOUBLE PRECISION NOT NULL,
    progress JSONB NOT NULL DEFAULT '{{}}',
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    error TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_expires DOUBLE PRECISION NOT NULL DEFAULT 0,
    result JSONB NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS {TABLE}_queue ON {TABLE} (state, create_time, id);
"""
_COLUMNS = ("id", "kind", "state", "request", "create_time", "progress", "start_time", "end_time", "error",
            "model_name", "attempts", "cancel_requested", "lease_owner", "lease_expires", "result")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM {TABLE}"
_RETURNING = f"RETURNING {', '.join(_COLUMNS)}"
# Advisory lock keys: schema creation and the queue-length check of ``create`` are serialised across replicas.
_SCHEMA_LOCK, _CREATE_LOCK = 0x5354_0001, 0x5354_0002

T = TypeVar("T")


def _record(row: tuple) -> JobRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["request"] = bytes(values["request"])
    return JobRecord(**values)


class PostgresJobStore:
    def __init__(self, url: str, *, connect_timeout: float = 10) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._all: list[psycopg.Connection] = []
        self._all_lock = threading.Lock()

        def create_schema(db: psycopg.Connection) -> None:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                db.execute(_SCHEMA)

        self._call(create_schema)

    # --- connections ------------------------------------------------------------------------------------------

    def _db(self) -> psycopg.Connection:
        db = getattr(self._local, "db", None)
        if db is None or db.closed or db.broken:
            db = psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout)),
                                 application_name="styletransfer")
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    def _call(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Runs ``work`` on this thread's connection; database trouble becomes :class:`StoreUnavailable`."""
        try:
            return work(self._db())
        except psycopg.OperationalError as exc:
            self._local.db = None  # reconnect next time
            raise StoreUnavailable(f"job store unavailable: {exc}".strip()) from exc

    @contextmanager
    def _tx(self, db: psycopg.Connection) -> Iterator[psycopg.Connection]:
        with db.transaction():
            yield db

    # --- the store --------------------------------------------------------------------------------------------

    def create(self, kind: str, request: bytes, *, model_name: str, max_queued: int, now: float) -> JobRecord:
        job_id = uuid.uuid4().hex

        def work(db: psycopg.Connection) -> JobRecord:
            with self._tx(db):
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
                (queued,) = _one(db.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE state = %s", (QUEUED,)))
                if queued >= max_queued:
                    raise QueueFull(f"{queued} jobs are already queued (limit {max_queued})")
                if model_name and db.execute(f"SELECT 1 FROM {TABLE} WHERE model_name = %s AND state = ANY(%s) "
                                             "LIMIT 1", (model_name, [QUEUED, RUNNING])).fetchone():
                    raise NameTaken(f"model {model_name!r} is being trained by another job")
                row = db.execute(f"INSERT INTO {TABLE} (id, kind, state, request, create_time, model_name) "
                                 f"VALUES (%s, %s, %s, %s, %s, %s) {_RETURNING}",
                                 (job_id, kind, QUEUED, request, now, model_name)).fetchone()
            return _record(row)

        return self._call(work)

    def get(self, job_id: str) -> JobRecord | None:
        def work(db: psycopg.Connection) -> JobRecord | None:
            row = db.execute(f"{_SELECT} WHERE id = %s", (job_id,)).fetchone()
            return _record(row) if row else None

        return self._call(work)

    def list(self, *, state: str | None, kind: str | None, page_size: int, page_token: str
             ) -> tuple[list[JobRecord], str]:
        where, args = list_filter(state, kind, page_token, "%s")
        sql = f"{_SELECT} WHERE {where} ORDER BY create_time DESC, id DESC LIMIT %s"
        rows = self._call(lambda db: db.execute(sql, [*args, page_size + 1]).fetchall())
        return page([_record(r) for r in rows], page_size)

    def claim(self, worker: str, kinds: tuple[str, ...], *, lease_seconds: float, now: float) -> JobRecord | None:
        sql = (f"UPDATE {TABLE} SET state = %s, attempts = attempts + 1, start_time = %s, lease_owner = %s, "
               f"lease_expires = %s WHERE id = (SELECT id FROM {TABLE} WHERE state = %s AND kind = ANY(%s) "
               f"ORDER BY create_time, id LIMIT 1 FOR UPDATE SKIP LOCKED) {_RETURNING}")
        row = self._call(lambda db: db.execute(sql, (RUNNING, now, worker, now + lease_seconds, QUEUED,
                                                     list(kinds))).fetchone())
        return _record(row) if row else None

    def heartbeat(self, job_id: str, worker: str, *, lease_seconds: float, now: float,
                  progress: dict | None = None) -> bool:
        sql = (f"UPDATE {TABLE} SET lease_expires = %s, progress = COALESCE(%s, progress) "
               "WHERE id = %s AND state = %s AND lease_owner = %s RETURNING cancel_requested")
        value = Jsonb(progress) if progress is not None else None
        row = self._call(lambda db: db.execute(sql, (now + lease_seconds, value, job_id, RUNNING, worker)).fetchone())
        return row is not None and not row[0]

    def finish(self, job_id: str, worker: str, *, state: str, now: float, error: str = "",
               result: dict | None = None) -> bool:
        sql = (f"UPDATE {TABLE} SET state = %s, end_time = %s, error = %s, result = %s, lease_owner = '', "
               "request = '' WHERE id = %s AND state = %s AND lease_owner = %s")
        args = (state, now, error, Jsonb(result or {}), job_id, RUNNING, worker)
        return self._call(lambda db: db.execute(sql, args).rowcount) == 1

    def release(self, job_id: str, worker: str) -> None:
        sql = (f"UPDATE {TABLE} SET state = %s, lease_owner = '', lease_expires = 0, attempts = attempts - 1 "
               "WHERE id = %s AND state = %s AND lease_owner = %s")  # a clean hand-back is not a failed attempt
        self._call(lambda db: db.execute(sql, (QUEUED, job_id, RUNNING, worker)))

    def request_cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        def work(db: psycopg.Connection) -> JobRecord | None:
            with self._tx(db):
                row = db.execute(f"{_SELECT} WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
                if row is None or row[2] in TERMINAL:
                    return _record(row) if row else None
                if row[2] == QUEUED:
                    sql = (f"UPDATE {TABLE} SET state = 'CANCELLED', end_time = %s, cancel_requested = TRUE, "
                           f"request = '' WHERE id = %s {_RETURNING}")
                    return _record(db.execute(sql, (now, job_id)).fetchone())
                sql = f"UPDATE {TABLE} SET cancel_requested = TRUE WHERE id = %s {_RETURNING}"
                return _record(db.execute(sql, (job_id,)).fetchone())

        return self._call(work)

    def requeue_expired(self, *, now: float) -> list[str]:
        sql = (f"UPDATE {TABLE} SET state = %s, lease_owner = '', lease_expires = 0 "
               "WHERE state = %s AND lease_expires < %s RETURNING id")
        return [r[0] for r in self._call(lambda db: db.execute(sql, (QUEUED, RUNNING, now)).fetchall())]

    def delete_finished_before(self, cutoff: float, *, limit: int = 500) -> list[str]:
        sql = (f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} WHERE end_time < %s AND state = ANY(%s) "
               "LIMIT %s) RETURNING id")
        return [r[0] for r in self._call(lambda db: db.execute(sql, (cutoff, sorted(TERMINAL), limit)).fetchall())]

    def reclaim(self) -> None:
        """PostgreSQL's autovacuum reuses the space of deleted rows; nothing to do here."""

    def counts(self) -> dict[tuple[str, str], int]:
        rows = self._call(lambda db: db.execute(f"SELECT kind, state, COUNT(*) FROM {TABLE} "
                                                "GROUP BY kind, state").fetchall())
        return {(kind, state): n for kind, state, n in rows}

    def close(self) -> None:
        with self._all_lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()


def _one(cursor: Any) -> tuple:
    row = cursor.fetchone()
    assert row is not None
    return row
