"""The typed client and the CLI against a real server."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from PIL import Image

from clients.cli import main as cli
from clients.client import JobState, ModelDefaults, StyleClient, StyleRef, StyleTransferError
from tests.helpers import install_decoder, make_image, png_bytes


@pytest.fixture
def client(server) -> StyleClient:
    with StyleClient(server.target, timeout=60) as c:
        yield c


def test_stylize_accepts_paths_bytes_and_pil(client: StyleClient, tmp_path: Path) -> None:
    path = tmp_path / "content.png"
    path.write_bytes(png_bytes(40, 30, 1))
    style = make_image(32, 32, seed=2)
    results = [client.stylize(content, style, style_size=32)
               for content in (str(path), path, png_bytes(40, 30, 1), make_image(40, 30, seed=1))]
    assert {(r.width, r.height) for r in results} == {(40, 30)}
    assert len({r.image for r in results}) == 1  # the same pixels, however they were given
    assert results[0].untrained and results[0].timing["compute_ms"] > 0
    assert results[0].to_pil().size == (40, 30)


def test_multiple_styles_masks_and_options(client: StyleClient) -> None:
    mask = Image.new("L", (40, 30), 255)
    result = client.stylize(png_bytes(40, 30, 1), [png_bytes(32, 32, 2), png_bytes(32, 32, 3)], weights=[0.2, 0.8],
                            masks=[mask, None], alpha=0.7, preserve_color="luminance", output_format="jpeg",
                            quality=80, content_size=20)
    assert result.mime_type == "image/jpeg" and (result.width, result.height) == (26, 20)


def test_style_registry_through_the_client(client: StyleClient) -> None:
    info = client.put_style(png_bytes(32, 32, 2), style_size=32, display_name="mine")
    assert client.get_style(info.style_id).display_name == "mine"
    assert [s.style_id for s in client.list_styles(page_size=1)] == [info.style_id]
    assert client.stylize(png_bytes(24, 24, 1), StyleRef(info.style_id)).width == 24
    client.delete_style(info.style_id)
    assert list(client.list_styles()) == []


def test_errors_become_one_exception_with_the_code(client: StyleClient) -> None:
    with pytest.raises(StyleTransferError) as info:
        client.stylize(png_bytes(24, 24, 1), png_bytes(24, 24, 2), alpha=3.0)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "alpha" in info.value.details
    assert len(info.value.request_id) >= 8  # the server's id of the failed call, as its log line shows it
    with pytest.raises(StyleTransferError) as info:
        client.get_style("0" * 32)
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ValueError):
        client.stylize(b"x", [b"a", b"b"], weights=[1.0])


def test_models(client: StyleClient) -> None:
    (model,) = client.models()
    assert model.is_default and model.untrained and not model.trained and not model.problem
    assert (model.family, model.version) == ("adain", "random")
    assert set(model.weights_sha256) == {"encoder", "decoder"} == set(model.provenance)
    assert model.weights_sha256["decoder"] == model.decoder_sha256 and len(model.decoder_sha256) == 64
    assert model.provenance["decoder"] == "random(seed=0)"
    assert model.defaults == ModelDefaults(style_size=512, alpha=1.0, content_size=0)  # AdaIN's own


def _register_trained(server, name: str, tmp_path: Path) -> None:
    """A trained model without a Train job: a random decoder checkpoint registered as a Train job would."""
    registry = server.server.runtime.models
    install_decoder(registry, name, registry.default.encoder_sha256, tmp_path)


def test_delete_model_removes_a_trained_model_and_refuses_a_built_in_one(server, client: StyleClient,
                                                                          tmp_path: Path) -> None:
    _register_trained(server, "mine", tmp_path)
    mine = {m.name: m for m in client.models()}["mine"]
    assert mine.trained and mine.family == "adain" and mine.metadata["steps"] == "3"
    client.delete_model("mine")
    assert [m.name for m in client.models()] == ["default"]
    for name, code in (("default", grpc.StatusCode.FAILED_PRECONDITION), ("mine", grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(StyleTransferError) as info:
            client.delete_model(name)
        assert info.value.code == code and name in info.value.details


def test_cli_stylize_styles_and_models(server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    content.write_bytes(png_bytes(40, 30, 1))
    style.write_bytes(png_bytes(32, 32, 2))
    target = ["--target", server.target]
    out = tmp_path / "out.jpg"
    assert cli([*target, "stylize", str(content), str(style), "-o", str(out), "--alpha", "0.5"]) == 0
    assert Image.open(io.BytesIO(out.read_bytes())).format == "JPEG"
    assert "UNTRAINED" in capsys.readouterr().out
    assert cli([*target, "styles", "put", str(style), "--name", "cli-style"]) == 0
    style_id = capsys.readouterr().out.strip()
    assert cli([*target, "styles", "list"]) == 0
    listed = capsys.readouterr().out  # the stored image's own size, not the size a model encoded it at
    assert listed.startswith(f"{style_id}  32x32  style size ") and listed.endswith("  cli-style\n")
    assert cli([*target, "stylize", str(content), f"id:{style_id}", str(style), "--weights", "1,1", "-o",
                str(tmp_path / "two.png")]) == 0
    assert cli([*target, "models"]) == 0
    out = capsys.readouterr().out
    assert "default (adain/random) (default) UNTRAINED  cpu/float32  decoder " in out
    assert "    decoder: random(seed=0), encoder: random" in out  # where each role's weights came from
    assert cli([*target, "styles", "delete", style_id]) == 0


def test_cli_errors_are_one_line_without_traceback(server, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--target", server.target, "styles", "get", "0" * 32]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: NOT_FOUND: ") and "Traceback" not in err
    assert cli(["--target", "127.0.0.1:1", "--timeout", "2", "models"]) == 1
    assert "is the server running at 127.0.0.1:1?" in capsys.readouterr().err
    assert cli(["--target", server.target, "stylize", str(tmp_path / "missing.png"), "x.png", "-o", "o.png"]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_cli_delete_model(server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = ["--target", server.target]
    assert cli([*target, "delete-model", "default"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: FAILED_PRECONDITION: ") and "built in" in err
    _register_trained(server, "mine", tmp_path)
    assert cli([*target, "models"]) == 0
    out = capsys.readouterr().out  # the encoder is the server's random one, so the trained model is UNTRAINED too
    assert "mine (adain/mine) UNTRAINED trained  cpu/float32" in out and "/models/mine/decoder.safetensors" in out
    assert cli([*target, "delete-model", "mine"]) == 0 and capsys.readouterr().out == "deleted mine\n"
    assert cli([*target, "delete-model", "mine"]) == 1 and "error: NOT_FOUND: " in capsys.readouterr().err


def test_console_script_runs(server, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("styletransfer")
    result = subprocess.run([str(script), "--target", server.target, "models"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "default" in result.stdout


def test_cli_gatys_writes_the_result_and_jobs_commands(server, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    content.write_bytes(png_bytes(48, 40, 1))
    style.write_bytes(png_bytes(48, 48, 2))
    target = ["--target", server.target]
    out = tmp_path / "g.webp"
    assert cli([*target, "gatys", str(content), str(style), "-o", str(out), "--iterations", "6",
                "--num-scales", "1"]) == 0
    assert Image.open(out).format == "WEBP" and Image.open(out).size == (48, 40)
    captured = capsys.readouterr()
    job_id = next(line.split()[1] for line in captured.err.splitlines() if line.startswith("job "))
    assert "6/6" in captured.err  # the live progress bar reached the end
    assert cli([*target, "jobs", "list"]) == 0 and f"{job_id}  gatys  succeeded  6/6" in capsys.readouterr().out
    assert cli([*target, "jobs", "get", job_id]) == 0 and "succeeded" in capsys.readouterr().out
    assert cli([*target, "jobs", "result", job_id, "-o", str(tmp_path / "r.webp")]) == 0
    assert (tmp_path / "r.webp").read_bytes() == out.read_bytes()  # the server's bytes: already WebP
    assert cli([*target, "jobs", "result", job_id, "-o", str(tmp_path / "r.png")]) == 0
    assert Image.open(tmp_path / "r.png").format == "PNG"  # the extension chose the format
    assert cli([*target, "jobs", "cancel", "nope"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_client_job_methods(client: StyleClient) -> None:
    job = client.submit_gatys(png_bytes(40, 40, 1), png_bytes(40, 40, 2), iterations=3, num_scales=1)
    final = list(client.watch_job(job.id, timeout=120))[-1]
    assert final.progress.step == 3 and final.state is JobState.SUCCEEDED
    assert client.job_result(job.id).width == 40
    assert [j.id for j in client.list_jobs(page_size=1)] == [job.id]
    assert client.cancel_job(job.id).id == job.id
