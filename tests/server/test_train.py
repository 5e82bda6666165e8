"""The Train RPC: a decoder trained on folders under the datasets root, registered and served without a restart."""

from __future__ import annotations

import io
import os
from pathlib import Path

import grpc
import pytest
from PIL import Image

from server.config import Config
from server.jobs.train_runner import train_options
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import code_of, make_datasets, png_bytes, train_request, wait_for


@pytest.fixture
def trainer(start_server, tmp_path: Path):
    make_datasets(tmp_path / "data" / "datasets")
    return start_server()


def finished(stub, job_id: str) -> list[pb.Job]:
    return list(stub.WatchJob(pb.WatchJobRequest(id=job_id), timeout=600))


def test_train_registers_a_model_that_stylize_uses_at_once(trainer) -> None:
    stub = trainer.stub()
    job = stub.Train(train_request(), timeout=30)
    assert job.kind == pb.JOB_KIND_TRAIN and job.model_name == "avatars"
    updates = finished(stub, job.id)
    final = updates[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    assert final.progress.step == 12 and set(final.progress.losses) == {"content", "style"}
    models = {m.name: m for m in stub.ListModels(pb.ListModelsRequest()).models}
    assert models["avatars"].metadata["content_dir"] == "faces" and models["avatars"].metadata["steps"] == "12"
    assert models["avatars"].metadata["precision"] == "float32"  # what --precision (fp32 in the tests) trains in
    assert not models["avatars"].is_default
    reply = stub.Stylize(pb.StylizeRequest(content=png_bytes(40, 32, 1), styles=[pb.StyleInput(
        image=png_bytes(32, 32, 2))], model="avatars"), timeout=60)
    assert reply.model == "avatars" and (reply.width, reply.height) == (40, 32)
    preview = stub.GetJobResult(pb.GetJobResultRequest(id=job.id))
    assert preview.mime_type == "image/png" and Image.open(io.BytesIO(preview.image)).format == "PNG"
    # fine-tuning from the new model
    tuned = finished(stub, stub.Train(train_request(model_name="avatars-v2", init_from="avatars",
                                                    iterations=3)).id)[-1]
    assert tuned.state == pb.JOB_STATE_SUCCEEDED
    assert "avatars-v2" in {m.name for m in stub.ListModels(pb.ListModelsRequest()).models}


def test_warm_up_fields_reach_the_training_options(trainer) -> None:
    options = train_options(train_request(warmup_steps=2, pixel_weight=5.0), Config())
    assert (options.warmup_steps, options.pixel_weight) == (2, 5.0)
    unset = train_options(train_request(), Config())
    assert (unset.warmup_steps, unset.pixel_weight) == (0, 1.0)  # TrainOptions' own defaults
    # a job that is all warm-up reports the warm-up's losses
    stub = trainer.stub()
    job = stub.Train(train_request(model_name="warm", iterations=2, warmup_steps=2, checkpoint_every=2), timeout=30)
    final = finished(stub, job.id)[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    assert set(final.progress.losses) == {"content", "pixel"} and final.progress.losses["pixel"] > 0
    with pytest.raises(grpc.RpcError) as refused:
        stub.Train(train_request(model_name="cold", pixel_weight=-1.0), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "pixel_weight" in refused.value.details()


def test_path_escapes_and_bad_requests_are_refused(trainer, tmp_path: Path) -> None:
    stub = trainer.stub()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "data" / "datasets" / "link-out")
    cases = [
        ({"content_dir": "../outside"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"content_dir": str(outside)}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"content_dir": "link-out"}, grpc.StatusCode.PERMISSION_DENIED),
        ({"content_dir": "nothing-here"}, grpc.StatusCode.NOT_FOUND),
        ({"content_dir": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"model_name": "default"}, grpc.StatusCode.ALREADY_EXISTS),
        ({"model_name": "bad name!"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"init_from": "ghost"}, grpc.StatusCode.NOT_FOUND),
        ({"image_size": 4}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"iterations": 10**7}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"num_processes": 99}, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for fields, code in cases:
        assert code_of(lambda f=fields: stub.Train(train_request(**f), timeout=10)) == code, fields


def test_train_resumes_from_its_checkpoint_after_a_restart(start_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_datasets(data / "datasets")
    first = start_server(data_dir=str(data), job_workers=1)
    stub = first.stub()
    job = stub.Train(train_request(iterations=400, checkpoint_every=5, model_name="long"))
    wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=job.id)).progress.step >= 7, timeout=300)
    first.stop()  # a graceful stop puts the running job back in the queue
    second = start_server(data_dir=str(data), job_workers=1)
    stub = second.stub()
    steps = []
    for update in stub.WatchJob(pb.WatchJobRequest(id=job.id), timeout=300):
        # a graceful hand-back is not a failed attempt: the job runs again as attempt 1
        if update.attempts == 1 and update.state == pb.JOB_STATE_RUNNING and update.progress.step not in steps:
            steps.append(update.progress.step)
        if len(steps) >= 3:
            break
    assert min(steps) >= 5  # continued from the step-5 (or later) checkpoint
    stub.CancelJob(pb.CancelJobRequest(id=job.id))
    wait_for(lambda: stub.GetJob(pb.GetJobRequest(id=job.id)).state == pb.JOB_STATE_CANCELLED, timeout=300)


def test_train_with_two_ddp_processes_through_the_rpc(trainer) -> None:
    stub = trainer.stub()
    job = stub.Train(train_request(model_name="ddp", iterations=4, checkpoint_every=2, num_processes=2))
    final = finished(stub, job.id)[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    models = {m.name: m for m in stub.ListModels(pb.ListModelsRequest()).models}
    assert models["ddp"].metadata["processes"] == "2" and models["ddp"].metadata["steps"] == "4"


def test_cli_train_and_models(trainer, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main as cli

    target = ["--target", trainer.target]
    assert cli([*target, "train", "--content-dir", "faces", "--style-dir", "house-style", "--name", "cli-model",
                "--iterations", "3", "--batch-size", "2", "--image-size", "32"]) == 0
    assert "model cli-model is ready" in capsys.readouterr().out
    assert cli([*target, "models"]) == 0 and "cli-model" in capsys.readouterr().out
    assert cli([*target, "train", "--content-dir", "../x", "--style-dir", "house-style", "--name", "y"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
