"""The Magenta family served: listed by ListModels as a trained model with its hashes and provenance, and Stylize
through gRPC returns exactly what the model returns in-process (inline and registered styles, masks)."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from model.adain import AdaINModel
from model.family import StyleSource
from model.magenta import MagentaModel, graphs
from server.config import Config
from server.families import build_models
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, encode, make_image

CONTENT = make_image(97, 66, seed=1)
STYLE = make_image(80, 64, seed=2)


@pytest.fixture
def served(start_server, random_model: AdaINModel, magenta_model: MagentaModel) -> RunningServer:
    return start_server(models=[random_model, magenta_model])


def stylize(server: RunningServer, **fields) -> pb.StylizeResponse:
    fields.setdefault("styles", [pb.StyleInput(image=encode(STYLE))])
    fields.setdefault("model", "magenta")
    return server.stub().Stylize(pb.StylizeRequest(content=encode(CONTENT), **fields), timeout=60)


def pixels(data: bytes | Image.Image) -> np.ndarray:
    image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data)).convert("RGB")
    return np.asarray(image, dtype=np.int16)


def test_the_server_builds_the_magenta_family_from_the_installed_package(tmp_path) -> None:
    config = Config(model_options={"vgg": str(tmp_path / "missing.pth"), "decoder": str(tmp_path / "missing.pth")},
                    device="cpu")
    (model,) = [m for m in build_models(config) if m.info.family == "magenta"]
    assert model.info.name == "magenta" and not model.info.untrained


def test_list_models_shows_magenta_as_a_trained_model_with_hashes_and_provenance(served: RunningServer) -> None:
    listed = {m.name: m for m in served.stub().ListModels(pb.ListModelsRequest(), timeout=30).models}
    info = listed["magenta"]
    assert (info.family, info.version, info.untrained) == ("magenta", "v1-256-int8", False)
    assert dict(info.weights_sha256) == {"predict": graphs.PREDICT.sha256, "transform": graphs.TRANSFORM.sha256}
    assert "arbitrary_predict.onnx" in info.provenance["predict"] and "Apache-2.0" in info.metadata["license"]


def test_stylize_over_grpc_equals_the_model_in_process(served: RunningServer, magenta_model: MagentaModel) -> None:
    out = stylize(served, alpha=0.7, model="magenta/v1-256-int8")
    assert (out.model, out.width, out.height, out.untrained) == ("magenta", 97, 66, False)
    expected = magenta_model.stylize(CONTENT, [StyleSource(STYLE)], replace(magenta_model.info.defaults, alpha=0.7))
    assert np.array_equal(pixels(out.image), pixels(expected))


def test_an_unset_style_size_is_the_size_magenta_was_trained_at(served: RunningServer,
                                                                 magenta_model: MagentaModel) -> None:
    listed = {m.name: m for m in served.stub().ListModels(pb.ListModelsRequest(), timeout=30).models}
    assert listed["magenta"].defaults.style_size == 256 and listed["default"].defaults.style_size == 512
    unset, at_256, at_512 = (pixels(stylize(served, **size).image) for size in ({}, {"style_size": 256},
                                                                                 {"style_size": 512}))
    assert np.array_equal(unset, at_256) and not np.array_equal(unset, at_512)
    assert np.array_equal(unset, pixels(magenta_model.stylize(CONTENT, [StyleSource(STYLE)])))  # in process: the same


def test_a_registered_style_gives_the_same_result_as_inline(served: RunningServer) -> None:
    style = served.stub().PutStyle(pb.PutStyleRequest(image=encode(STYLE)), timeout=60)
    registered = stylize(served, styles=[pb.StyleInput(style_id=style.style_id)])
    assert np.array_equal(pixels(registered.image), pixels(stylize(served).image))


def test_masks_are_composited_as_the_model_does_in_process(served: RunningServer, magenta_model: MagentaModel) -> None:
    left = np.zeros((CONTENT.height, CONTENT.width), dtype=np.uint8)
    left[:, : CONTENT.width // 2] = 255
    mask = Image.fromarray(left, "L")
    out = stylize(served, styles=[pb.StyleInput(image=encode(STYLE), mask=encode(mask))])
    expected = magenta_model.stylize(CONTENT, [StyleSource(STYLE, mask=mask)])  # its own defaults, as the server
    assert np.array_equal(pixels(out.image), pixels(expected))
    assert np.abs(pixels(out.image)[:, -30:] - pixels(CONTENT)[:, -30:]).max() <= 1  # the unmasked half
