"""The embedded job store: SQLite in WAL mode in the data directory, safe across threads and processes.

Every state change is one transaction (``BEGIN IMMEDIATE`` takes the write lock first, so two claimers can never
take the same job). The server holds one connection per thread. Any SQLite error (disk full, I/O error, a corrupt or
unreadable file) surfaces as :class:`StoreUnavailable` naming the file, so callers retry instead of dying, and the
connection is reopened on the next call. The file uses incremental auto-vacuum: ``reclaim`` returns the pages of
deleted jobs to the file system.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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

__all__ = ["SQLiteJobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    request BLOB NOT NULL,
    create_time REAL NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    start_time REAL,
    end_time REAL,
    error TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_expires REAL NOT NULL DEFAULT 0,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, create_time);
"""
_COLUMNS = ("id", "kind", "state", "request", "create_time", "progress", "start_time", "end_time", "error",
            "model_name", "attempts", "cancel_requested", "lease_owner", "lease_expires", "result")


BUSY_TIMEOUT_SECONDS = 30.0  # how long any statement waits for another connection's lock before giving up

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """SQLite errors -> :class:`StoreUnavailable` (with the file's path), and a fresh connection next time."""

    @functools.wraps(method)
    def wrapper(self: SQLiteJobStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            self._drop_connection()
            raise StoreUnavailable(f"job store {self._path} unusable: {type(exc).__name__}: {exc}") from exc

    return wrapper  # type: ignore[return-value]


def _record(row: tuple) -> JobRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["progress"] = json.loads(values["progress"])
    values["result"] = json.loads(values["result"])
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["request"] = bytes(values["request"])
    return JobRecord(**values)


def _use_wal(db: sqlite3.Connection) -> None:
    """Puts the file in WAL mode, waiting for other connections as long as any other statement would.

    The mode is a property of the file, so usually there is nothing to change. Converting takes an exclusive lock,
    and SQLite does not call the busy handler for it when another connection holds the write lock: the conversion
    fails at once with "database is locked" (or leaves the mode as it was). So it is retried within the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = 0.005
    while (mode := db.execute("PRAGMA journal_mode").fetchone()[0]) != "wal":
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if mode == "wal":
            return
        if time.monotonic() + pause > deadline:
            raise sqlite3.OperationalError(f"database is locked: journal mode stays {mode!r}, WAL needed")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class SQLiteJobStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._create_schema()

    @_guarded
    def _create_schema(self) -> None:
        db = self._db()
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # a new file, or one made before auto-vacuum
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")  # auto_vacuum of an existing file changes only with a VACUUM
        db.executescript(_SCHEMA)  # executescript manages its own transaction

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            self._local.db = db
            _use_wal(db)
            db.execute("PRAGMA synchronous=FULL")  # a job accepted is a job on disk
        return db

    def _drop_connection(self) -> None:
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind, exc, tb) -> None:
            self.db.execute("ROLLBACK" if kind else "COMMIT")

    def _tx(self) -> _Tx:
        return self._Tx(self._db())

    def _get(self, db: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    @_guarded
    def create(self, kind: str, request: bytes, *, model_name: str, max_queued: int, now: float) -> JobRecord:
        job_id = uuid.uuid4().hex
        with self._tx() as db:
            (queued,) = db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (QUEUED,)).fetchone()
            if queued >= max_queued:
                raise QueueFull(f"{queued} jobs are already queued (limit {max_queued})")
            if model_name and db.execute("SELECT 1 FROM jobs WHERE model_name = ? AND state IN (?, ?) LIMIT 1",
                                         (model_name, QUEUED, RUNNING)).fetchone():
                raise NameTaken(f"model {model_name!r} is being trained by another job")
            db.execute("INSERT INTO jobs (id, kind, state, request, create_time, model_name) VALUES (?,?,?,?,?,?)",
                       (job_id, kind, QUEUED, request, now, model_name))
            record = self._get(db, job_id)
        assert record is not None
        return record

    @_guarded
    def get(self, job_id: str) -> JobRecord | None:
        return self._get(self._db(), job_id)

    @_guarded
    def list(self, *, state: str | None, kind: str | None, page_size: int, page_token: str
             ) -> tuple[list[JobRecord], str]:
        where, args = list_filter(state, kind, page_token, "?")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE {where} ORDER BY create_time DESC, id DESC LIMIT ?"
        rows = self._db().execute(sql, [*args, page_size + 1]).fetchall()
        return page([_record(r) for r in rows], page_size)

    @_guarded
    def claim(self, worker: str, kinds: tuple[str, ...], *, lease_seconds: float, now: float) -> JobRecord | None:
        marks = ",".join("?" * len(kinds))
        with self._tx() as db:
            row = db.execute(f"SELECT id FROM jobs WHERE state = ? AND kind IN ({marks}) "
                             "ORDER BY create_time, id LIMIT 1", (QUEUED, *kinds)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = ?, attempts = attempts + 1, start_time = ?, lease_owner = ?, "
                       "lease_expires = ? WHERE id = ?", (RUNNING, now, worker, now + lease_seconds, row[0]))
            return self._get(db, row[0])

    @_guarded
    def heartbeat(self, job_id: str, worker: str, *, lease_seconds: float, now: float,
                  progress: dict | None = None) -> bool:
        with self._tx() as db:
            record = self._get(db, job_id)
            if record is None or record.state != RUNNING or record.lease_owner != worker:
                return False
            db.execute("UPDATE jobs SET lease_expires = ?, progress = ? WHERE id = ?",
                       (now + lease_seconds, json.dumps(progress if progress is not None else record.progress),
                        job_id))
            return not record.cancel_requested

    @_guarded
    def finish(self, job_id: str, worker: str, *, state: str, now: float, error: str = "",
               result: dict | None = None) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET state = ?, end_time = ?, error = ?, result = ?, lease_owner = '', "
                             "request = x'' WHERE id = ? AND state = ? AND lease_owner = ?",
                             (state, now, error, json.dumps(result or {}), job_id, RUNNING, worker))
            return cur.rowcount == 1

    @_guarded
    def release(self, job_id: str, worker: str) -> None:
        with self._tx() as db:
            # a clean hand-back (shutdown) is not an attempt that failed: only crashes count towards the limit
            db.execute("UPDATE jobs SET state = ?, lease_owner = '', lease_expires = 0, attempts = attempts - 1 "
                       "WHERE id = ? AND state = ? AND lease_owner = ?", (QUEUED, job_id, RUNNING, worker))

    @_guarded
    def request_cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        with self._tx() as db:
            record = self._get(db, job_id)
            if record is None or record.state in TERMINAL:
                return record
            if record.state == QUEUED:
                db.execute("UPDATE jobs SET state = 'CANCELLED', end_time = ?, cancel_requested = 1, request = x'' "
                           "WHERE id = ?", (now, job_id))
            else:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return self._get(db, job_id)

    @_guarded
    def requeue_expired(self, *, now: float) -> list[str]:
        with self._tx() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM jobs WHERE state = ? AND lease_expires < ?",
                                            (RUNNING, now)).fetchall()]
            db.executemany("UPDATE jobs SET state = ?, lease_owner = '', lease_expires = 0 WHERE id = ?",
                           [(QUEUED, i) for i in ids])
            return ids

    @_guarded
    def delete_finished_before(self, cutoff: float, *, limit: int = 500) -> list[str]:
        marks = ",".join("?" * len(TERMINAL))
        with self._tx() as db:
            ids = [r[0] for r in db.execute(f"SELECT id FROM jobs WHERE end_time < ? AND state IN ({marks}) LIMIT ?",
                                            (cutoff, *sorted(TERMINAL), limit)).fetchall()]
            db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
            return ids

    @_guarded
    def reclaim(self) -> None:
        self._db().execute("PRAGMA incremental_vacuum")

    @_guarded
    def counts(self) -> dict[tuple[str, str], int]:
        rows = self._db().execute("SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state").fetchall()
        return {(kind, state): n for kind, state, n in rows}

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
