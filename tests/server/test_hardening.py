"""Hardening regression tests, each case against a real server: refused before any work, or served."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import code_of, encode, make_datasets, make_image, png_bytes, train_request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
CONTENT = png_bytes(32, 32, 1)
STYLE = png_bytes(32, 32, 2)
INF = float("inf")


def stylize(**fields) -> pb.StylizeRequest:
    return pb.StylizeRequest(**{"content": CONTENT, "styles": [pb.StyleInput(image=STYLE)], "style_size": 32,
                                **fields})


def gatys(**fields) -> pb.GatysRequest:
    return pb.GatysRequest(**{"content": png_bytes(96, 96, 1), "styles": [pb.StyleInput(image=STYLE)], "iterations": 2,
                              **fields})


# --- 1. cost model: tiny requests that asked for huge work --------------------------------------------------------

def test_style_pixels_after_resizing_are_bounded(start_server) -> None:
    stub = start_server(max_style_pixels=64 * 64).stub()
    sliver = encode(Image.new("RGB", (2000, 1)))  # the 88-byte PNG that became 512 x 1,024,000 pixels
    assert len(sliver) < 100
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=sliver), timeout=30)) == INVALID
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=sliver, style_size=0), timeout=30)) == INVALID
    big = png_bytes(128, 128)  # style_size 0 keeps 128 x 128: over 64 x 64
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=big, style_size=0), timeout=30)) == INVALID
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=20000), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(style_size=20000), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(styles=[pb.StyleInput(image=sliver)]), timeout=30)) == INVALID
    # at the bound it is served
    assert stub.PutStyle(pb.PutStyleRequest(image=big, style_size=64), timeout=60).style_size == 64
    assert stub.Stylize(stylize(style_size=64), timeout=60).width == 32


def test_registered_styles_are_bounded_at_the_request_style_size(start_server) -> None:
    stub = start_server(max_style_pixels=64 * 64).stub()
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    coral = stylize(styles=[pb.StyleInput(style_id=style.style_id)], style_size=20000,
                    color_preservation=pb.COLOR_PRESERVATION_CORAL)  # re-encodes the stored image at 20000 px
    assert code_of(lambda: stub.Stylize(coral, timeout=30)) == INVALID


def test_gatys_sizes_at_every_scale_and_style_counts_are_bounded(start_server) -> None:
    stub = start_server(gatys_max_pixels=128 * 128, max_styles=3).stub()
    start_too_big = gatys(size=64, start_size=6000, num_scales=2)
    assert code_of(lambda: stub.SubmitGatys(start_too_big, timeout=30)) == INVALID
    many = gatys(styles=[pb.StyleInput(image=STYLE, weight=1)] * 4)
    assert code_of(lambda: stub.SubmitGatys(many, timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(styles=[pb.StyleInput(image=STYLE, weight=1)] * 4))) == INVALID
    sliver = gatys(content=png_bytes(2000, 4), size=64)  # 64 x 0 px at its only scale
    assert code_of(lambda: stub.SubmitGatys(sliver, timeout=30)) == INVALID
    assert stub.SubmitGatys(gatys(size=96, start_size=64, num_scales=2), timeout=30).id


def test_train_batch_pixels_are_bounded(start_server, tmp_path: Path) -> None:
    make_datasets(tmp_path / "data" / "datasets")
    stub = start_server(train_max_batch_pixels=4 * 32 * 32).stub()
    assert code_of(lambda: stub.Train(train_request(batch_size=3000), timeout=30)) == INVALID
    assert code_of(lambda: stub.Train(train_request(batch_size=5), timeout=30)) == INVALID
    assert stub.Train(train_request(batch_size=4), timeout=30).id


@pytest.mark.parametrize("fields", [{"style_weight": INF}, {"tv_weight": INF}, {"learning_rate": INF},
                                    {"content_weight": float("nan")}])
def test_gatys_refuses_non_finite_numbers(server, fields) -> None:
    assert code_of(lambda: server.stub().SubmitGatys(gatys(**fields), timeout=30)) == INVALID


@pytest.mark.parametrize("fields", [{"lr": INF}, {"style_weight": INF}, {"lr_decay": float("nan")}])
def test_train_refuses_non_finite_numbers(start_server, tmp_path: Path, fields) -> None:
    make_datasets(tmp_path / "data" / "datasets")
    stub = start_server().stub()
    assert code_of(lambda: stub.Train(train_request(**fields), timeout=30)) == INVALID


def test_stylize_refuses_non_finite_numbers(server) -> None:
    stub = server.stub()
    assert code_of(lambda: stub.Stylize(stylize(alpha=float("nan")), timeout=30)) == INVALID
    two = [pb.StyleInput(image=STYLE, weight=1), pb.StyleInput(image=STYLE, weight=INF)]
    assert code_of(lambda: stub.Stylize(stylize(styles=two), timeout=30)) == INVALID


def test_display_names_are_bounded(server) -> None:
    long_name = pb.PutStyleRequest(image=STYLE, display_name="x" * 257)
    assert code_of(lambda: server.stub().PutStyle(long_name, timeout=30)) == INVALID
    assert server.stub().PutStyle(pb.PutStyleRequest(image=STYLE, display_name="x" * 256)).display_name


def test_put_style_stores_the_image_not_its_trailing_bytes(server, tmp_path: Path) -> None:
    padded = STYLE + b"\0" * 1_000_000
    style = server.stub().PutStyle(pb.PutStyleRequest(image=padded, style_size=32), timeout=60)
    stored = (tmp_path / "data" / "styles" / style.style_id / "image").read_bytes()
    assert style.size_bytes == len(stored) < 10_000
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored)).convert("RGB")),
                          np.asarray(Image.open(io.BytesIO(STYLE)).convert("RGB")))


# --- 3. client faults are never INTERNAL --------------------------------------------------------------------------

def test_images_too_small_for_the_networks_are_invalid_not_internal(server) -> None:
    stub = server.stub()
    assert code_of(lambda: stub.Stylize(stylize(content=png_bytes(8, 40)), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(content=png_bytes(64, 64), content_size=8), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(style_size=8), timeout=30)) == INVALID
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=png_bytes(8, 64), style_size=0))) == INVALID
    assert stub.Stylize(stylize(content=png_bytes(9, 40), style_size=9), timeout=60).width == 9


def test_coral_with_uniform_images_is_served(server) -> None:
    flat = encode(Image.new("RGB", (32, 32), (200, 30, 30)))
    stub = server.stub()
    for fields in ({"content": flat}, {"styles": [pb.StyleInput(image=flat)]}):
        reply = stub.Stylize(stylize(color_preservation=pb.COLOR_PRESERVATION_CORAL, **fields), timeout=60)
        assert reply.width == 32


def test_mpo_camera_jpegs_are_accepted(server) -> None:
    buf = io.BytesIO()
    frames = [make_image(32, 32, 3), make_image(32, 32, 4)]
    frames[0].save(buf, format="MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    assert server.stub().Stylize(stylize(content=buf.getvalue()), timeout=60).width == 32


def test_pillow_limit_is_set_once_and_never_toggled(server) -> None:
    from model.images import decode_image

    assert server.config.max_image_pixels == Image.MAX_IMAGE_PIXELS
    decode_image(CONTENT, field="content", max_pixels=10**9)
    assert server.config.max_image_pixels == Image.MAX_IMAGE_PIXELS


# --- 2. jobs: crash loops, store errors, a broken job database ----------------------------------------------------

def health_of(server, service: str) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(server.channel())
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def test_a_job_that_kills_its_worker_every_time_is_failed_after_bounded_attempts(start_server, tmp_path) -> None:
    from server.jobs.sqlite_store import SQLiteJobStore

    store = SQLiteJobStore(tmp_path / "data" / "jobs" / "jobs.db")
    job = store.create("GATYS", gatys().SerializeToString(), model_name="", max_queued=10, now=1.0)
    for _ in range(3):  # three attempts, each ended by the server dying (a SIGKILL leaves the job RUNNING)
        store.claim("dead-server", ("GATYS",), lease_seconds=30, now=2.0)
        store.requeue_expired(now=float("inf"))
    store.close()
    server = start_server(job_max_attempts=3)
    stub = server.stub()
    final = list(stub.WatchJob(pb.WatchJobRequest(id=job.id), timeout=60))[-1]
    assert final.state == pb.JOB_STATE_FAILED and "3 attempts" in final.error
    assert stub.SubmitGatys(gatys(), timeout=30).id  # the worker goes on with other jobs


def test_workers_survive_store_errors_and_finish_the_job(start_server, monkeypatch) -> None:
    import sqlite3

    from server.app import JOBS_HEALTH

    server = start_server(job_lease_seconds=30.0)
    store = server.server.runtime.jobs.store
    failures = {"finish": 2}
    real_db = store._db

    class DiskFull:
        """A connection whose job-ending UPDATE fails as a full disk would, twice."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def execute(self, sql: str, *args):
            if sql.startswith("UPDATE jobs SET state = ?, end_time") and failures["finish"] > 0:
                failures["finish"] -= 1
                raise sqlite3.OperationalError("database or disk is full")
            return self._db.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self._db, name)

    monkeypatch.setattr(store, "_db", lambda: DiskFull(real_db()))
    stub = server.stub()
    first = stub.SubmitGatys(gatys(), timeout=30)
    final = list(stub.WatchJob(pb.WatchJobRequest(id=first.id), timeout=120))[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED and failures["finish"] == 0
    second = stub.SubmitGatys(gatys(), timeout=30)  # the worker thread is alive
    assert list(stub.WatchJob(pb.WatchJobRequest(id=second.id), timeout=120))[-1].state == pb.JOB_STATE_SUCCEEDED
    assert health_of(server, JOBS_HEALTH) == 1  # SERVING again


def test_job_health_follows_the_store_and_stylize_stays_available(start_server, monkeypatch) -> None:
    import sqlite3

    from server.app import JOBS_HEALTH, SERVICE_NAME
    from tests.helpers import wait_for

    server = start_server()
    store = server.server.runtime.jobs.store

    def broken():
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store, "_db", broken)
    wait_for(lambda: health_of(server, JOBS_HEALTH) == 2)  # NOT_SERVING
    assert health_of(server, SERVICE_NAME) == 1 and health_of(server, "") == 1
    stub = server.stub()
    assert stub.Stylize(stylize(), timeout=60).width == 32
    assert code_of(lambda: stub.ListJobs(pb.ListJobsRequest(), timeout=30)) == grpc.StatusCode.UNAVAILABLE
    monkeypatch.undo()
    wait_for(lambda: health_of(server, JOBS_HEALTH) == 1)


def test_server_starts_with_a_corrupt_job_database(start_server, tmp_path, caplog) -> None:
    from server.app import JOBS_HEALTH

    db = tmp_path / "data" / "jobs" / "jobs.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    server = start_server()
    stub = server.stub()
    assert stub.Stylize(stylize(), timeout=60).width == 32
    assert stub.PutStyle(pb.PutStyleRequest(image=STYLE), timeout=60).style_id
    for call in (lambda: stub.SubmitGatys(gatys(), timeout=30), lambda: stub.ListJobs(pb.ListJobsRequest())):
        try:
            call()
            raise AssertionError("jobs should be unavailable")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE and str(tmp_path) not in exc.details()
    assert health_of(server, JOBS_HEALTH) == 2
    assert any(str(db) in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_two_train_jobs_cannot_take_the_same_model_name(start_server, tmp_path) -> None:
    make_datasets(tmp_path / "data" / "datasets")
    stub = start_server(job_workers=0).stub()  # the first job stays queued
    assert stub.Train(train_request(model_name="twins"), timeout=30).id
    assert code_of(lambda: stub.Train(train_request(model_name="twins"), timeout=30)) == \
        grpc.StatusCode.ALREADY_EXISTS


def test_list_jobs_and_ids_refuse_what_the_server_never_issued(server) -> None:
    import base64

    stub = server.stub()
    for request in (pb.ListJobsRequest(state=99), pb.ListJobsRequest(kind=42),
                    pb.ListJobsRequest(page_token="!!"), pb.ListJobsRequest(page_token="W10="),
                    pb.ListJobsRequest(page_token=base64.urlsafe_b64encode(b"[" * 200).decode()),
                    pb.ListJobsRequest(page_token="x" * 100_000)):
        assert code_of(lambda r=request: stub.ListJobs(r, timeout=30)) == INVALID
    try:
        stub.GetJob(pb.GetJobRequest(id="j" * 1_000_000 + "\nforged"), timeout=30)
        raise AssertionError("not found expected")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND and len(exc.details()) < 200 and "\n" not in exc.details()
    assert code_of(lambda: stub.CancelJob(pb.CancelJobRequest(id="../x"), timeout=30)) == grpc.StatusCode.NOT_FOUND


def test_request_ids_need_a_full_match() -> None:
    from server.logs import new_request_id

    # (grpc's Python client refuses to send the newline; other clients do, hence the unit check)
    assert new_request_id("evil-id\n") != "evil-id\n" and new_request_id("good-id.1") == "good-id.1"
    assert new_request_id("x" * 65) != "x" * 65


def test_dataset_files_linking_outside_their_folder_are_not_trained_on(tmp_path) -> None:
    from model.adain.train import ImageFolder, TrainOptions

    outside = tmp_path / "secret.png"
    make_image(64, 64, 9).save(outside)
    folder = tmp_path / "datasets" / "faces"
    folder.mkdir(parents=True)
    make_image(64, 64, 1).save(folder / "own.png")
    (folder / "escape.png").symlink_to(outside)
    (folder / "inside-link.png").symlink_to(folder / "own.png")
    dataset = ImageFolder(folder, TrainOptions())
    assert sorted(p.name for p in dataset.paths) == ["own.png", "own.png"] and dataset.skipped == 1


def test_messages_quoting_client_strings_are_bounded_and_escaped(server) -> None:
    try:
        server.stub().GetStyle(pb.GetStyleRequest(style_id="s" * 100_000 + "\nforged"), timeout=30)
        raise AssertionError("not found expected")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        assert len(exc.details()) < 600 and "\n" not in exc.details()


# --- 4. the event loop, storage, deletion ------------------------------------------------------------------------

def _blocked(monkeypatch, target, name: str):
    """Replaces ``target.name`` with a version that blocks until released; returns (entered, release) events."""
    import threading

    entered, release = threading.Event(), threading.Event()
    real = getattr(target, name)

    def slow(*args, **kwargs):
        entered.set()
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, slow)
    return entered, release


@pytest.mark.parametrize("rpc", ["ListStyles", "GetStyle", "DeleteStyle", "SubmitGatys"])
def test_health_is_answered_while_a_slow_style_call_is_in_flight(server, monkeypatch, rpc) -> None:
    stub = server.stub()
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    styles = server.server.runtime.styles
    method = {"ListStyles": "list", "GetStyle": "get", "DeleteStyle": "delete", "SubmitGatys": "get"}[rpc]
    entered, release = _blocked(monkeypatch, styles, method)
    request = {"ListStyles": pb.ListStylesRequest(), "GetStyle": pb.GetStyleRequest(style_id=style.style_id),
               "DeleteStyle": pb.DeleteStyleRequest(style_id=style.style_id),
               "SubmitGatys": gatys(styles=[pb.StyleInput(style_id=style.style_id)])}[rpc]
    call = getattr(stub, rpc).future(request, timeout=120)
    try:
        assert entered.wait(60)  # the slow store call is running now
        assert health_of(server, "") == 1  # and the event loop still answers (a blocked loop would time out)
        assert stub.Stylize(stylize(), timeout=60).width == 32
        assert not call.done()
    finally:
        release.set()
    call.result()


def test_a_deleted_style_cannot_be_used_even_when_deleted_during_its_encoding(server, monkeypatch, tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    stub = server.stub()
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    runtime = server.server.runtime
    for path in (tmp_path / "data" / "styles" / style.style_id).glob("code-*"):
        path.unlink()  # the next Stylize re-encodes the style ...
    runtime.registered_codes.discard_where(lambda key: True)
    entered, release = _blocked(monkeypatch, runtime.styles, "save_code")  # ... and pauses after encoding
    request = stylize(styles=[pb.StyleInput(style_id=style.style_id)])
    pending = ThreadPoolExecutor(1).submit(code_of, lambda: stub.Stylize(request, timeout=120))
    assert entered.wait(60)
    stub.DeleteStyle(pb.DeleteStyleRequest(style_id=style.style_id), timeout=30)
    release.set()
    assert pending.result() in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND)  # it was in flight
    assert len(runtime.registered_codes) == 0
    assert code_of(lambda: stub.Stylize(request, timeout=60)) == grpc.StatusCode.NOT_FOUND


def test_unreadable_statistics_are_re_derived_from_the_stored_image(server, tmp_path) -> None:
    stub = server.stub()
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    (stats,) = (tmp_path / "data" / "styles" / style.style_id).glob("code-*")
    stats.write_bytes(b"corrupt")
    server.server.runtime.registered_codes.discard_where(lambda key: True)
    request = stylize(styles=[pb.StyleInput(style_id=style.style_id)])
    assert stub.Stylize(request, timeout=60).width == 32
    assert stats.read_bytes() != b"corrupt"  # rewritten


@pytest.mark.parametrize("damage", ["meta missing", "meta corrupt", "meta wrong fields", "image missing"])
def test_a_damaged_style_is_reported_listed_around_deleted_and_re_created(server, tmp_path, damage) -> None:
    stub = server.stub()
    kept = stub.PutStyle(pb.PutStyleRequest(image=png_bytes(40, 40, 5), style_size=32), timeout=60)
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    folder = tmp_path / "data" / "styles" / style.style_id
    {"meta missing": lambda: (folder / "meta.json").unlink(),
     "meta corrupt": lambda: (folder / "meta.json").write_text("{not json"),
     "meta wrong fields": lambda: (folder / "meta.json").write_text('{"x": 1}'),
     "image missing": lambda: (folder / "image").unlink()}[damage]()
    server.server.runtime.registered_codes.discard_where(lambda key: True)
    for path in folder.glob("code-*"):
        path.unlink()  # so a Stylize needs the stored files
    by_id = stylize(styles=[pb.StyleInput(style_id=style.style_id)])
    if damage != "image missing":
        try:
            stub.GetStyle(pb.GetStyleRequest(style_id=style.style_id), timeout=30)
            raise AssertionError("DATA_LOSS expected")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DATA_LOSS and style.style_id in exc.details()
            assert str(tmp_path) not in exc.details()
    assert code_of(lambda: stub.Stylize(by_id, timeout=60)) == grpc.StatusCode.DATA_LOSS
    listed = [s.style_id for s in stub.ListStyles(pb.ListStylesRequest(), timeout=30).styles]
    assert kept.style_id in listed  # the listing works around it
    if damage == "image missing":  # re-registering replaces it; deleting works too
        assert stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60).style_id == style.style_id
        assert stub.Stylize(by_id, timeout=60).width == 32
    stub.DeleteStyle(pb.DeleteStyleRequest(style_id=style.style_id), timeout=30)
    assert code_of(lambda: stub.GetStyle(pb.GetStyleRequest(style_id=style.style_id))) == grpc.StatusCode.NOT_FOUND
    again = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    assert again.style_id == style.style_id and stub.Stylize(by_id, timeout=60).width == 32


def test_default_gatys_scales_fit_small_contents(server) -> None:
    stub = server.stub()
    small = png_bytes(64, 48, 3)  # the default two scales would start at 32 x 24: too small for relu5_1
    job = stub.SubmitGatys(pb.GatysRequest(content=small, styles=[pb.StyleInput(image=STYLE)], iterations=2),
                           timeout=30)
    final = list(stub.WatchJob(pb.WatchJobRequest(id=job.id), timeout=300))[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    asked = pb.GatysRequest(content=small, styles=[pb.StyleInput(image=STYLE)], iterations=2, num_scales=2)
    assert code_of(lambda: stub.SubmitGatys(asked, timeout=30)) == INVALID  # scales the client chose are checked
