"""The CLI's edges: bad --mask and output names as one-line errors, formats from extensions, a closed pipe,
help with the model's defaults, every Gatys/Train knob reaching the request, and a sane progress bar."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from PIL import Image

from clients import cli
from clients.client import (
    DEFAULT_MAX_MESSAGE,
    Job,
    JobKind,
    JobProgress,
    JobResult,
    JobState,
    ModelDefaults,
    ModelInfo,
    StyleClient,
    StyleTransferError,
)
from model.adain.train import TrainOptions
from model.gatys.optimise import GatysOptions
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import png_bytes

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = ["--target", "127.0.0.1:9"]  # commands refused before any call never connect


@pytest.fixture
def images(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "c.png").write_bytes(png_bytes(32, 32, 1))
    (tmp_path / "s.png").write_bytes(png_bytes(32, 32, 2))
    return str(tmp_path / "c.png"), str(tmp_path / "s.png")


@pytest.mark.parametrize(("mask", "message"), [
    ("3=fg.png", "--mask 3=fg.png: style index 3 does not exist; with 1 style(s) use 0..0"),
    ("fg.png", "--mask fg.png: expected INDEX=PATH"),
    ("x=fg.png", "--mask x=fg.png: expected INDEX=PATH"),
])
def test_bad_mask_indexes_are_one_line_errors(images, tmp_path: Path, capsys, mask: str, message: str) -> None:
    out = tmp_path / "o.png"
    assert cli.main([*UNREACHABLE, "stylize", *images, "--mask", mask, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "out.gif"], "cannot write .gif"),
    (["-o", "out"], "cannot write a file without extension"),
    (["-o", "out.png", "--format", "jpeg"], "--format jpeg disagrees with out.png"),
])
def test_output_names_that_do_not_say_a_format_are_refused(images, capsys, args: list[str], message: str) -> None:
    assert cli.main([*UNREACHABLE, "stylize", *images, *args]) == 1
    assert message in capsys.readouterr().err


def test_an_input_without_end_is_read_no_further_than_a_message_carries(images, tmp_path: Path) -> None:
    """``stylize /dev/zero ...`` once read until the kernel killed it at 19 GB: now one line, at once. In a process of
    its own with capped memory, so that a regression fails here rather than exhausting the machine."""
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'generated'}"}
    done = subprocess.run([sys.executable, "-m", "clients.cli", *UNREACHABLE, "stylize", "/dev/zero", images[1], "-o",
                           str(tmp_path / "o.png")], capture_output=True, text=True, env=env, timeout=120,
                          preexec_fn=cap_memory)
    assert done.returncode == 1 and done.stderr == (
        f"error: RESOURCE_EXHAUSTED: /dev/zero: larger than {DEFAULT_MAX_MESSAGE} bytes, the most one message "
        "carries (max_message_bytes)\n")


def test_the_client_reads_files_within_its_message_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes(32, 32, 1) + bytes(2000))
    with StyleClient("127.0.0.1:9", max_message_bytes=1000) as client, pytest.raises(StyleTransferError) as info:
        client.put_style(big)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than 1000 bytes" in info.value.details


def test_jobs_result_refuses_an_unknown_extension_before_calling(capsys) -> None:
    assert cli.main([*UNREACHABLE, "jobs", "result", "some-id", "-o", "x.gif"]) == 1
    assert "cannot write .gif" in capsys.readouterr().err


def test_a_result_is_saved_in_the_format_its_extension_names(tmp_path: Path) -> None:
    png = JobResult(png_bytes(24, 16, 1), "image/png", 24, 16)
    for name, fmt in (("a.webp", "WEBP"), ("a.jpg", "JPEG"), ("a.png", "PNG")):
        png.save(tmp_path / name)
        assert Image.open(tmp_path / name).format == fmt and Image.open(tmp_path / name).size == (24, 16)
    assert (tmp_path / "a.png").read_bytes() == png.image  # already PNG: the server's bytes as they are
    with pytest.raises(ValueError, match="cannot write .gif"):
        png.save(tmp_path / "a.gif")


def test_a_closed_pipe_ends_the_cli_quietly(server) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader (`| head -3`) is gone before anything is written
    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'generated'}"}
    done = subprocess.run([sys.executable, "-m", "clients.cli", "--target", server.target, "models"], stdout=write,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    os.close(write)
    assert done.stderr == "" and done.returncode == 1


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_gatys_and_train_help_describe_every_option_with_its_default(capsys) -> None:
    gatys = _help("gatys", capsys)
    for text in ("--content-weight CONTENT_WEIGHT weight of the content loss (default 1.0)",
                 "--style-weight STYLE_WEIGHT weight of the style loss (default 1.0)", "(default content)",
                 "--tv-weight", "--start-size", "--learning-rate", "--init {content,noise,style}"):
        assert text in gatys
    train = _help("train", capsys)
    for text in ("--lr LR Adam learning rate (default 0.0001)", "images per step (default 8)", "--lr-decay",
                 "instead of thousands (default 0)", "--pixel-weight PIXEL_WEIGHT weight of the warm-up's pixel loss "
                 "(default 1.0)"):
        assert text in train


def test_the_helps_defaults_are_the_models() -> None:
    gatys = GatysOptions()
    model = {"num_scales": gatys.num_scales, "content_weight": gatys.weights["content"],
             "style_weight": gatys.weights["style"], "tv_weight": gatys.weights["tv"], "init": gatys.init,
             "optimizer": gatys.optimizer, "style_loss": gatys.style_loss, "seed": gatys.seed}
    assert model == cli.GATYS_DEFAULTS
    train = TrainOptions()
    assert {key: getattr(train, key) for key in cli.TRAIN_DEFAULTS} == cli.TRAIN_DEFAULTS


def _job(state: JobState, step: int = 0, total: int = 0, eta: float = 0.0) -> Job:
    return Job("j1", JobKind.GATYS, state, JobProgress(step, total, 0.5, {}, 0.0, eta), "", "", 1, None, None, None)


@dataclass
class FakeClient:
    """Records requests and replays a job's updates (the CLI's commands only need these methods)."""

    updates: list[Job]
    requests: dict = field(default_factory=dict)

    def submit_gatys(self, content, styles, **options) -> Job:
        self.requests["gatys"] = options
        return self.updates[0]

    def train(self, **fields) -> Job:
        self.requests["train"] = fields
        return self.updates[0]

    def watch_job(self, job_id: str) -> Iterator[Job]:
        return iter(self.updates)

    def cancel_job(self, job_id: str) -> Job:
        """The job as the server has it when it takes the request: a running job is still running."""
        return self.updates[0]

    def job_result(self, job_id: str) -> JobResult:
        return JobResult(png_bytes(16, 16, 1), "image/png", 16, 16)

    def models(self) -> list[ModelInfo]:
        meta = {"content_dir": "faces", "style_dir": "house-style", "steps": "12", "final_content_loss": "1.5",
                "final_style_loss": "0.25"}
        return [ModelInfo("avatars", "", "", "e" * 64, "d" * 64, "cpu", "float32", False, False, meta),
                ModelInfo("magenta", "", "", "", "", "cpu", "float32", False, True, {}, "magenta", "v1",
                          {"transfer": "a" * 64, "predictor": "b" * 64}, {"transfer": "pkg:transfer.tflite"},
                          problem="OSError: unreadable", defaults=ModelDefaults(256, 1.0, 0))]


def _run(command: list[str], client: FakeClient) -> None:
    args = cli.build_parser().parse_args(command)
    cli._COMMANDS[args.command](client, args)


def test_every_gatys_and_train_knob_reaches_the_request_and_unset_ones_are_left_to_the_server(tmp_path) -> None:
    client = FakeClient([_job(JobState.SUCCEEDED, 4, 4)])
    _run(["gatys", "c.png", "s.png", "-o", str(tmp_path / "g.webp"), "--content-weight", "2", "--style-weight", "30",
          "--tv-weight", "0.5", "--init", "noise", "--start-size", "64", "--learning-rate", "0.1",
          "--optimizer", "adam"], client)
    assert client.requests["gatys"] == {"content_weight": 2.0, "style_weight": 30.0, "tv_weight": 0.5,
                                        "init": pb.GATYS_INIT_NOISE, "start_size": 64, "learning_rate": 0.1,
                                        "optimizer": pb.OPTIMIZER_ADAM, "output_format": pb.IMAGE_FORMAT_WEBP,
                                        "preserve_color": False}
    assert Image.open(tmp_path / "g.webp").format == "WEBP"
    _run(["train", "--content-dir", "a", "--style-dir", "b", "--name", "m", "--lr", "0.001", "--style-weight", "5",
          "--warmup-steps", "300", "--pixel-weight", "2"], client)
    assert client.requests["train"] == {"content_dir": "a", "style_dir": "b", "model_name": "m", "lr": 0.001,
                                        "style_weight": 5.0, "warmup_steps": 300, "pixel_weight": 2.0}


def test_models_shows_what_a_trained_model_was_trained_on(capsys) -> None:
    _run(["models"], FakeClient([]))
    out = capsys.readouterr().out
    assert ("trained on content faces, styles house-style, steps 12, final content loss 1.5, final style loss 0.25"
            in out)


def test_models_shows_each_familys_roles_where_they_came_from_and_problems(capsys) -> None:
    _run(["models"], FakeClient([]))
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("magenta (magenta/v1) (default)  cpu/float32  predictor bbbbbbbbbbbb  transfer aaaaaaaaaaaa")
    assert lines[at + 1:at + 4] == ["    transfer: pkg:transfer.tflite",
                                    "    defaults: style size 256, alpha 1, content size kept",
                                    "    problem: OSError: unreadable"]


def test_the_progress_bar_of_a_resumed_job_is_sane(monkeypatch, capsys) -> None:
    clock = iter([100.0, 110.0, 120.0])  # one reading per update that has steps
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    updates = [_job(JobState.QUEUED), _job(JobState.RUNNING, 500, 1000, eta=600.0),
               _job(JobState.RUNNING, 520, 1000, eta=90.0), _job(JobState.SUCCEEDED, 1000, 1000)]
    job = cli._watch(FakeClient(updates), "j1")
    assert job.state is JobState.SUCCEEDED
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "job j1 queued" in err
    assert "0/0" not in err and "0step" not in err
    assert "2.00 step/s, eta 01:30" in err  # 20 steps in this session's 10 s, and the server's ETA
    assert "1000/1000" in err and "eta 00:00" not in err.splitlines()[-1]


def test_the_python_job_state_is_an_enum_that_still_equals_the_proto_value() -> None:
    job = Job.from_proto(pb.Job(id="x", kind=pb.JOB_KIND_TRAIN, state=pb.JOB_STATE_RUNNING))
    assert job.state is JobState.RUNNING and job.kind is JobKind.TRAIN
    assert job.state == pb.JOB_STATE_RUNNING and not job.state.finished and job.create_time is None


def test_cancel_prints_the_state_the_job_ends_in(capsys) -> None:
    client = FakeClient([_job(JobState.RUNNING, 13, 400), _job(JobState.RUNNING, 14, 400),
                         _job(JobState.CANCELLED, 14, 400)])
    _run(["jobs", "cancel", "j1"], client)
    assert capsys.readouterr().out == "j1  gatys  cancelled  14/400  loss 0.5\n"


def test_cancelling_a_finished_job_is_an_error_that_says_how_it_ended(capsys) -> None:
    with pytest.raises(SystemExit, match="error: job j1 succeeded: there was nothing to cancel"):
        _run(["jobs", "cancel", "j1"], FakeClient([_job(JobState.SUCCEEDED, 400, 400)]))
    assert capsys.readouterr().out == "j1  gatys  succeeded  400/400  loss 0.5\n"


def test_the_progress_bar_reads_steps_then_rate_eta_and_loss(monkeypatch, capsys) -> None:
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    cli._watch(FakeClient([_job(JobState.RUNNING, 0, 400, eta=600.0), _job(JobState.RUNNING, 13, 400, eta=500.0)]),
               "j1")
    err = capsys.readouterr().err
    assert "| 13/400, 1.30 step/s, eta 08:20, loss 0.5" in err and "[," not in err


def test_a_missing_local_file_is_a_style_transfer_error(tmp_path: Path) -> None:
    from clients import StyleClient, StyleTransferError

    with StyleClient("127.0.0.1:9", timeout=5) as client, pytest.raises(StyleTransferError) as info:
        client.stylize(tmp_path / "missing.jpg", png_bytes(8, 8))  # refused before any call
    assert info.value.code.name == "NOT_FOUND" and "missing.jpg: No such file or directory" in info.value.details
