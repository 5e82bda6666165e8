"""The model repository under stress: a delete wins over loads in flight, a model is served with exactly the weights
its listing shows, and one damaged meta.json is its own model's problem (never INTERNAL for anyone).

Loads are held on an event by a gated copy of the fake family (no timing assumptions)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from model.declaration import TrainedModel
from model.family import StyleModel
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, code_of, encode, install_decoder, make_image
from tests.server.fake_family import FLAT, TINT_FILE

CONTENT = encode(make_image(24, 16, seed=1))
STYLE = encode(Image.new("RGB", (20, 20), (200, 40, 10)))
RACERS = 40


class Gate:
    """Holds every trained-model load of the fake family, after it has read its file, until released."""

    def __init__(self) -> None:
        self.closed = False
        self.entered = threading.Semaphore(0)
        self._open = threading.Event()

    def load(self, trained: TrainedModel, builtins: Sequence[StyleModel]) -> StyleModel:
        model = FLAT.trained.load(trained, builtins)
        if self.closed:
            self.entered.release()
            assert self._open.wait(60), "the test never opened the gate"
        return model

    def release(self) -> None:
        self._open.set()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def server(start_server, gate: Gate) -> RunningServer:
    gated = dataclasses.replace(FLAT, trained=dataclasses.replace(FLAT.trained, load=gate.load))
    return start_server(families=(gated,))


def _install(server: RunningServer, name: str, rgb: tuple[int, int, int], folder: Path) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"rgb": list(rgb)}))
    server.server.runtime.models.register(name, "flat", {"tint": folder / f"{name}.json"}, {})


def _place(server: RunningServer, name: str, rgb: tuple[int, int, int]) -> None:
    """A trained model's folder written by hand (not loaded yet), as a deployment might copy it in."""
    folder = Path(server.config.data_dir) / "models" / name
    folder.mkdir()
    (folder / TINT_FILE).write_text(json.dumps({"rgb": list(rgb)}))
    digest = hashlib.sha256((folder / TINT_FILE).read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps({"family": "flat", "weights": {"tint": digest}}))


def _stylize(server: RunningServer, model: str) -> pb.StylizeResponse:
    request = pb.StylizeRequest(content=CONTENT, styles=[pb.StyleInput(image=STYLE)], model=model, alpha=1.0)
    return server.stub().Stylize(request, timeout=60)


def _colour(response: pb.StylizeResponse) -> tuple[int, ...]:
    import io

    pixels = np.asarray(Image.open(io.BytesIO(response.image)).convert("RGB"))
    return tuple(int(v) for v in pixels[0, 0])


def test_a_delete_wins_over_the_loads_in_flight(server: RunningServer, gate: Gate, tmp_path: Path) -> None:
    _place(server, "x", (0, 0, 0))
    gate.closed = True
    stub = server.stub()
    # more waiting callers than Python's default pool for blocking calls has threads (at most 32)
    with ThreadPoolExecutor(RACERS) as pool:
        racing = [pool.submit(code_of, lambda: _stylize(server, "x")) for _ in range(RACERS)]
        assert gate.entered.acquire(timeout=60)  # a load has read the weights and waits
        stub.DeleteModel(pb.DeleteModelRequest(name="x"), timeout=30)
        gate.release()
        codes = [call.result(timeout=60) for call in racing]
    assert codes == [grpc.StatusCode.NOT_FOUND] * RACERS
    assert code_of(lambda: _stylize(server, "x")) == grpc.StatusCode.NOT_FOUND
    assert "x" not in [m.name for m in stub.ListModels(pb.ListModelsRequest(), timeout=30).models]


def test_a_folder_put_back_under_a_deleted_name_serves_its_own_weights(server: RunningServer, gate: Gate) -> None:
    _place(server, "x", (0, 0, 0))
    gate.closed = True
    with ThreadPoolExecutor(1) as pool:
        racing = pool.submit(code_of, lambda: _stylize(server, "x"))
        assert gate.entered.acquire(timeout=60)  # a load of the old weights is in flight
        server.stub().DeleteModel(pb.DeleteModelRequest(name="x"), timeout=30)
        _place(server, "x", (200, 200, 200))  # put back by hand under the same name, with other weights
        gate.closed = False
        gate.release()
        racing.result(timeout=60)
    listed = {m.name: m for m in server.stub().ListModels(pb.ListModelsRequest(), timeout=30).models}
    tint = Path(server.config.data_dir) / "models" / "x" / TINT_FILE
    assert listed["x"].weights_sha256["tint"] == hashlib.sha256(tint.read_bytes()).hexdigest()
    assert _colour(_stylize(server, "x")) == (200, 120, 105)  # the new tint, never the deleted one
    shutil.rmtree(tint.parent)  # replaced by hand while cached: the next call serves what the listing shows
    _place(server, "x", (100, 100, 100))
    assert _colour(_stylize(server, "x")) == (150, 70, 55)


def test_weights_that_differ_from_their_listing_are_refused(server: RunningServer, tmp_path: Path) -> None:
    _install(server, "x", (0, 0, 0), tmp_path)
    assert _colour(_stylize(server, "x")) == (100, 20, 5)
    (tmp_path / "data" / "models" / "x" / TINT_FILE).write_text(json.dumps({"rgb": [50, 50, 50]}))  # meta unchanged
    with pytest.raises(grpc.RpcError) as err:
        _stylize(server, "x")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "tint" in err.value.details()


BAD_META = {
    "infinite time": '{"create_time": 1e999}',
    "huge time": '{"create_time": 1e300}',
    "negative time": '{"create_time": -1e12}',
    "NaN time": '{"create_time": NaN}',
    "boolean time": '{"create_time": true}',
    "an array": "[1, 2, 3]",
    "metadata an array": '{"metadata": [1, 2]}',
    "nested metadata": '{"metadata": {"a": {"b": 1}}}',
    "deeply nested": "[" * 5000 + "]" * 5000,
    "not JSON": "{",
    "not UTF-8": b"{\"metadata\": {\"a\": \"\xff\"}}",
    "unknown family": '{"family": "no-such-family"}',
    "family not a string": '{"family": 7}',
    "weights not hex": '{"weights": {"decoder": "xyz"}}',
    "too large": '{"metadata": {"a": "' + "x" * 70_000 + '"}}',
}


def test_a_bad_meta_json_is_its_own_models_problem(start_server, tmp_path: Path) -> None:
    server = start_server()  # the shared random AdaIN model
    registry = server.server.runtime.models
    install_decoder(registry, "good", registry.default.encoder_sha256, tmp_path)
    install_decoder(registry, "bad", registry.default.encoder_sha256, tmp_path)
    models = tmp_path / "data" / "models"
    names = {f"bad-{i}": case for i, case in enumerate(BAD_META)}
    for name, case in names.items():  # copies of a good model, each with one kind of damage to its meta.json
        shutil.copytree(models / "bad", models / name)
        content = BAD_META[case]
        (models / name / "meta.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    listed = {m.name: m for m in server.stub().ListModels(pb.ListModelsRequest(), timeout=30).models}
    for name, case in names.items():
        assert "meta.json" in listed[name].problem and listed[name].trained, case
        request = pb.StylizeRequest(content=CONTENT, styles=[pb.StyleInput(image=STYLE)], model=name)
        with pytest.raises(grpc.RpcError) as err:
            server.stub().Stylize(request, timeout=60)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and name in err.value.details(), case
    assert not listed["good"].problem and not listed["bad"].problem and not listed["default"].problem
    good = pb.StylizeRequest(content=CONTENT, styles=[pb.StyleInput(image=STYLE)], model="good")
    assert server.stub().Stylize(good, timeout=60).model == "good"
    server.stub().DeleteModel(pb.DeleteModelRequest(name="bad-0"), timeout=30)  # a damaged one can be removed


def test_a_folder_an_older_server_wrote_is_still_served(start_server, tmp_path: Path) -> None:
    """Its meta.json names no family and records the decoder's hash as decoder_sha256."""
    server = start_server()
    registry = server.server.runtime.models
    install_decoder(registry, "old", registry.default.encoder_sha256, tmp_path)
    meta_path = tmp_path / "data" / "models" / "old" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({"name": "old", "create_time": meta["create_time"],
                                     "decoder_sha256": meta["weights"]["decoder"], "metadata": meta["metadata"]}))
    listed = {m.name: m for m in server.stub().ListModels(pb.ListModelsRequest(), timeout=30).models}["old"]
    assert (listed.family, listed.problem, listed.decoder_sha256) == ("adain", "", meta["weights"]["decoder"])
    request = pb.StylizeRequest(content=CONTENT, styles=[pb.StyleInput(image=STYLE)], model="adain/old")
    assert server.stub().Stylize(request, timeout=60).model == "old"
