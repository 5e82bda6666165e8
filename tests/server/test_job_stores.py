"""The job store contract, checked on both implementations: embedded SQLite and shared PostgreSQL (a real server)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from server.jobs.postgres_store import PostgresJobStore
from server.jobs.sqlite_store import SQLiteJobStore
from server.jobs.store import CANCELLED, QUEUED, RUNNING, JobStore, NameTaken, QueueFull, StoreUnavailable

StoreFactory = Callable[[], JobStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request, tmp_path) -> StoreFactory:
    """Opens stores on one database; each call is a separate set of connections, as another process would have."""
    if request.param == "sqlite":
        return lambda: SQLiteJobStore(tmp_path / "jobs.db")
    url = request.getfixturevalue("postgres").new_database()
    return lambda: PostgresJobStore(url)


def test_each_job_is_claimed_exactly_once(open_store: StoreFactory) -> None:
    store = open_store()
    for _ in range(30):
        store.create("GATYS", b"r", model_name="", max_queued=100, now=1.0)
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        own = open_store()
        while (job := own.claim(f"w{n}", ("GATYS",), lease_seconds=60, now=2.0)) is not None:
            with lock:
                claimed.append(job.id)
        own.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 30 == len(set(claimed))


def test_queue_limit_holds_under_concurrent_submitters(open_store: StoreFactory) -> None:
    accepted, refused = [], []
    lock = threading.Lock()

    def submitter() -> None:
        own = open_store()
        for _ in range(10):
            try:
                own.create("GATYS", b"r", model_name="", max_queued=12, now=1.0)
                outcome = accepted
            except QueueFull:
                outcome = refused
            with lock:
                outcome.append(1)
        own.close()

    threads = [threading.Thread(target=submitter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 12 and len(refused) == 28
    assert open_store().counts() == {("GATYS", QUEUED): 12}


def test_a_sqlite_store_opened_beside_a_writer_waits_for_it(tmp_path) -> None:
    """Turning a new file to WAL needs an exclusive lock, which SQLite does not wait for on its own: a store opened
    while another process writes (two servers starting on one data directory) must wait, not fail."""
    path = tmp_path / "jobs.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    with ThreadPoolExecutor(1) as pool:
        opening = pool.submit(SQLiteJobStore, path)
        wait([opening], timeout=0.5)
        assert not opening.done(), opening.exception()  # it cannot open while the write lock is held
        writer.execute("COMMIT")
        store = opening.result()
    store.create("GATYS", b"r", model_name="", max_queued=10, now=1.0)
    assert store.counts() == {("GATYS", QUEUED): 1}
    assert writer.execute("SELECT x FROM other").fetchall() == [(1,)]
    store.close()
    writer.close()


def test_expired_leases_are_requeued_and_ownership_is_respected(open_store: StoreFactory) -> None:
    store = open_store()
    job = store.create("GATYS", b"r", model_name="m", max_queued=10, now=1.0)
    assert store.claim("a", ("TRAIN",), lease_seconds=10, now=2.0) is None  # kinds filter
    assert store.claim("a", ("GATYS",), lease_seconds=10, now=2.0).id == job.id
    assert store.heartbeat(job.id, "a", lease_seconds=10, now=5.0, progress={"step": 3})
    assert store.requeue_expired(now=14.0) == []  # renewed until 15
    assert store.requeue_expired(now=16.0) == [job.id]
    assert not store.heartbeat(job.id, "a", lease_seconds=10, now=16.5)  # "a" lost it
    again = store.claim("b", ("GATYS",), lease_seconds=10, now=17.0)
    assert again.attempts == 2 and again.progress == {"step": 3} and again.model_name == "m"
    assert not store.finish(job.id, "a", state="SUCCEEDED", now=18.0)
    assert store.finish(job.id, "b", state="SUCCEEDED", now=18.0, result={"path": "x", "width": 4})
    done = store.get(job.id)
    assert done.terminal and done.result == {"path": "x", "width": 4} and done.end_time == 18.0
    assert store.delete_finished_before(18.0) == []
    assert store.delete_finished_before(19.0) == [job.id]
    assert store.get(job.id) is None


def test_release_puts_a_job_back_with_its_progress(open_store: StoreFactory) -> None:
    store = open_store()
    job = store.create("TRAIN", b"req", model_name="", max_queued=10, now=1.0)
    store.claim("a", ("TRAIN",), lease_seconds=10, now=2.0)
    store.heartbeat(job.id, "a", lease_seconds=10, now=3.0, progress={"step": 7, "loss": 1.5})
    store.release(job.id, "b")  # not the owner: nothing happens
    assert store.get(job.id).state == RUNNING
    store.release(job.id, "a")
    back = store.get(job.id)
    assert back.state == QUEUED and back.progress == {"step": 7, "loss": 1.5} and back.request == b"req"


def test_cancel_ends_queued_jobs_at_once_and_flags_running_ones(open_store: StoreFactory) -> None:
    store = open_store()
    queued = store.create("GATYS", b"r", model_name="", max_queued=10, now=1.0)
    running = store.create("GATYS", b"r", model_name="", max_queued=10, now=2.0)
    store.claim("a", ("GATYS",), lease_seconds=10, now=3.0)  # the oldest: ``queued``
    store.release(queued.id, "a")
    assert store.claim("a", ("GATYS",), lease_seconds=10, now=3.0).id == queued.id
    store.finish(queued.id, "a", state="SUCCEEDED", now=4.0)
    claimed = store.claim("a", ("GATYS",), lease_seconds=10, now=4.0)
    assert claimed.id == running.id
    flagged = store.request_cancel(running.id, now=5.0)
    assert flagged.state == RUNNING and flagged.cancel_requested
    assert not store.heartbeat(running.id, "a", lease_seconds=10, now=5.5)  # the worker learns it here
    assert store.finish(running.id, "a", state=CANCELLED, now=6.0)
    assert store.request_cancel(running.id, now=7.0).state == CANCELLED  # terminal jobs never change
    assert store.request_cancel(queued.id, now=7.0).state == "SUCCEEDED"
    waiting = store.create("GATYS", b"r", model_name="", max_queued=10, now=8.0)
    ended = store.request_cancel(waiting.id, now=9.0)
    assert ended.state == CANCELLED and ended.end_time == 9.0
    assert store.claim("a", ("GATYS",), lease_seconds=10, now=10.0) is None
    assert store.request_cancel("0" * 32, now=10.0) is None


def test_list_is_newest_first_with_filters_and_pages(open_store: StoreFactory) -> None:
    store = open_store()
    ids = [store.create("GATYS" if i % 2 else "TRAIN", b"r", model_name="", max_queued=100, now=float(i)).id
           for i in range(7)]
    seen, token = [], ""
    while True:
        page, token = store.list(state=None, kind=None, page_size=3, page_token=token)
        seen += [r.id for r in page]
        if not token:
            break
    assert seen == ids[::-1]
    gatys, _ = store.list(state=QUEUED, kind="GATYS", page_size=10, page_token="")
    assert [r.id for r in gatys] == [ids[5], ids[3], ids[1]]
    assert store.list(state=RUNNING, kind=None, page_size=10, page_token="") == ([], "")


def test_an_unreachable_database_is_reported_as_unavailable(postgres) -> None:
    with pytest.raises(StoreUnavailable, match="unavailable"):
        PostgresJobStore(postgres.url("no_such_database"), connect_timeout=2)


def test_a_clean_release_is_not_counted_as_an_attempt(open_store: StoreFactory) -> None:
    store = open_store()
    job = store.create("GATYS", b"r", model_name="", max_queued=10, now=1.0)
    store.claim("a", ("GATYS",), lease_seconds=10, now=2.0)
    store.release(job.id, "a")  # shutdown: handed back
    assert store.get(job.id).attempts == 0
    store.claim("a", ("GATYS",), lease_seconds=10, now=3.0)
    store.requeue_expired(now=100.0)  # its worker died
    assert store.claim("b", ("GATYS",), lease_seconds=10, now=101.0).attempts == 2


def test_ended_jobs_drop_their_request_bytes(open_store: StoreFactory) -> None:
    store = open_store()
    done = store.create("GATYS", b"x" * 100_000, model_name="", max_queued=10, now=1.0)
    store.claim("a", ("GATYS",), lease_seconds=10, now=2.0)
    assert store.get(done.id).request == b"x" * 100_000  # a running job still needs it
    store.finish(done.id, "a", state="SUCCEEDED", now=3.0)
    cancelled = store.create("GATYS", b"y" * 100_000, model_name="", max_queued=10, now=4.0)
    store.request_cancel(cancelled.id, now=5.0)
    assert store.get(done.id).request == b"" and store.get(cancelled.id).request == b""


def test_model_names_are_reserved_while_a_job_trains_them(open_store: StoreFactory) -> None:
    store = open_store()
    first = store.create("TRAIN", b"r", model_name="avatars", max_queued=10, now=1.0)
    with pytest.raises(NameTaken):
        store.create("TRAIN", b"r", model_name="avatars", max_queued=10, now=2.0)
    store.claim("a", ("TRAIN",), lease_seconds=10, now=3.0)
    with pytest.raises(NameTaken):  # running: still reserved
        store.create("TRAIN", b"r", model_name="avatars", max_queued=10, now=4.0)
    store.finish(first.id, "a", state="FAILED", now=5.0, error="x")
    assert store.create("TRAIN", b"r", model_name="avatars", max_queued=10, now=6.0).model_name == "avatars"


def test_retention_deletes_in_batches(open_store: StoreFactory) -> None:
    store = open_store()
    for i in range(7):
        job = store.create("GATYS", b"r", model_name="", max_queued=10, now=1.0 + i)
        store.request_cancel(job.id, now=2.0 + i)
    assert len(store.delete_finished_before(100.0, limit=3)) == 3
    assert len(store.delete_finished_before(100.0, limit=3)) == 3
    assert len(store.delete_finished_before(100.0, limit=3)) == 1
    store.reclaim()
    assert store.counts() == {}


@pytest.mark.parametrize("token", ["", "e30=", "W10=", "WzEsIDIsIDNd", "!!!", "[" * 5000, "WyJhIiwgMV0="])
def test_page_tokens_this_server_did_not_issue_are_value_errors(token: str) -> None:
    import base64

    from server.jobs.store import decode_token

    nested = base64.urlsafe_b64encode(b"[" * 100_000).decode()
    for bad in (token, nested):
        with pytest.raises(ValueError):
            decode_token(bad)
