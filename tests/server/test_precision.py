"""What the server computes in: ``--precision auto`` on CPUs with and without native bfloat16 (their features
injected), forced bfloat16, refused float16; the start-up log line, ListModels' dtype and the model_info metric say
what runs, and Stylize and StylizeStream run it."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image

from model.adain import DECLARATION, AdaINModel
from model.family import StyleSource, StylizeOptions
from server.config import Config, ConfigError
from server.families import build_models
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import make_image, png_bytes

CONTENT, STYLE = make_image(24, 16, seed=1), make_image(20, 20, seed=2)


def _cpu_with(monkeypatch: pytest.MonkeyPatch, *features: str) -> None:
    monkeypatch.setattr("model.devices.cpu_features", lambda: frozenset(features))


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.mark.slow  # builds a random AdaIN model and runs it in bfloat16, tens of times slower on CPUs without it
def test_auto_serves_bfloat16_where_the_cpu_computes_it_natively(start_server, monkeypatch, caplog) -> None:
    _cpu_with(monkeypatch, "avx2", "avx512_bf16")
    with caplog.at_level(logging.INFO, logger="server.families"):
        server = start_server(families=[DECLARATION], device="cpu", precision="auto")
    assert "torch precision bfloat16 on cpu: auto, this CPU computes bfloat16 natively (avx512_bf16)" in caplog.text
    stub = server.stub()
    (info,) = stub.ListModels(pb.ListModelsRequest(), timeout=30).models
    assert info.dtype == "bfloat16"
    assert server.metric("styletransfer_model_info", model="default", family="adain", version="random",
                         device="cpu", dtype="bfloat16", untrained="true") == 1
    style = pb.StyleInput(image=png_bytes(20, 20, seed=2))
    buf = io.BytesIO()
    CONTENT.save(buf, format="PNG")
    reply = stub.Stylize(pb.StylizeRequest(content=buf.getvalue(), styles=[style], style_size=20), timeout=120)
    local = AdaINModel.random(0, device="cpu", precision="bf16")
    want = np.asarray(local.stylize(CONTENT, [StyleSource(image=STYLE)], StylizeOptions(style_size=20)), np.int16)
    assert np.abs(_pixels(reply.image) - want).max() == 0  # the server ran the bfloat16 model
    settings = pb.StreamSettings(styles=[style], style_size=20, output_format=pb.IMAGE_FORMAT_PNG)
    messages = [pb.StylizeStreamRequest(settings=settings),
                pb.StylizeStreamRequest(frame=pb.StreamFrame(image=buf.getvalue()))]
    (frame,) = stub.StylizeStream(iter(messages), timeout=120)
    assert np.abs(_pixels(frame.image) - want).max() == 0  # streams run the same model


def _precision_line(caplog: pytest.LogCaptureFixture, config: Config) -> logging.LogRecord:
    with caplog.at_level(logging.INFO, logger="server.families"):
        assert build_models(config, []) == []
    (line,) = [r for r in caplog.records if "torch precision" in r.getMessage()]
    return line


def test_auto_keeps_float32_where_the_cpu_lacks_native_bfloat16(monkeypatch, caplog) -> None:
    _cpu_with(monkeypatch, "avx2", "avx512f", "avx512bw")
    line = _precision_line(caplog, Config(device="cpu"))
    assert line.levelno == logging.INFO
    assert line.getMessage() == ("torch precision float32 on cpu: auto, this CPU lacks native bfloat16 (avx512_bf16, "
                                 "amx_bf16, Arm bf16)")


def test_forced_bfloat16_without_native_support_runs_with_a_warning(monkeypatch, caplog) -> None:
    _cpu_with(monkeypatch, "avx2")
    line = _precision_line(caplog, Config(device="cpu", precision="bf16"))
    assert line.levelno == logging.WARNING and "slower than float32" in line.getMessage()


def test_float16_on_cpu_stops_the_server_with_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="fp16 is not supported on cpu"):
        build_models(Config(device="cpu", precision="fp16"), [])
