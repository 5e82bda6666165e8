"""``--backend onnxruntime``: configured once, applied to the served model, same pictures as the torch backend."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.adain.stylizer import BACKENDS, AdaINModel
from model.family import StyleSource
from server.config import ConfigError, load_config, settings
from server.families import build_models
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, base_config, free_port, make_image, png_bytes

pytestmark = pytest.mark.slow  # a server on ONNX Runtime against torch


def test_backend_flag_offers_the_model_backends() -> None:
    backend = next(s for s in settings() if s.name == "backend")
    assert tuple(backend.choices) == BACKENDS and backend.family == "adain"
    assert load_config(["--backend", "onnxruntime"], {}).option("backend") == "onnxruntime"
    assert load_config([], {"STYLETRANSFER_BACKEND": "onnxruntime"}).option("backend") == "onnxruntime"
    with pytest.raises(ConfigError, match="--backend onnxruntime runs float32"):
        load_config(["--backend", "onnxruntime", "--precision", "fp16"], {})


def test_adain_model_runs_on_the_configured_backend() -> None:
    models = build_models(base_config(model_options={"backend": "onnxruntime"}, device="cpu"))
    assert [m.backend for m in models if isinstance(m, AdaINModel)] == ["onnxruntime"]


def test_server_with_onnxruntime_backend_matches_torch(tmp_path: Path) -> None:
    config = base_config(model_options={"backend": "onnxruntime"}, device="cpu", data_dir=str(tmp_path),
                         metrics_port=free_port())
    server = RunningServer(config, build_models(config))  # the models `python -m server` builds from this config
    try:
        reply = server.stub().Stylize(pb.StylizeRequest(content=png_bytes(64, 48, seed=1),
                                                        styles=[pb.StyleInput(image=png_bytes(64, 64, seed=2))]),
                                      timeout=120)
    finally:
        server.stop(1.0)
    torch_model = AdaINModel.random(config.random_seed, device="cpu", precision=config.precision)
    want = torch_model.stylize(make_image(64, 48, 1), [StyleSource(image=make_image(64, 64, 2))])
    got = Image.open(io.BytesIO(reply.image)).convert("RGB")
    assert np.abs(np.asarray(got, dtype=np.int16) - np.asarray(want, dtype=np.int16)).max() <= 1
