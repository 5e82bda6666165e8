"""Weight files: where the official ones live, how they are fetched and verified, and how every file is loaded.

Loading never unpickles arbitrary objects: ``.pth`` files go through ``torch.load(weights_only=True)`` and our own
checkpoints are safetensors. Every state dict is checked against the expected layout (keys and shapes) before use,
and a mismatch names the file and the first offending key.

Integrity of downloads: every downloadable file has a record in :mod:`model.pins` (source, hash, size), checked by
its one :func:`model.pins.verify`: torchvision's file names carry the first 8 hex digits of the file's SHA-256; the
AdaIN release files have no published hash, so they are checked against the hashes pinned in
``model/weights_pins.json``; a file without a pin is accepted on first download and its hash recorded in
``<dest>/.sha256-pins.json``, and later downloads that differ are refused (trust on first use).

Random weights (``random_vgg_state``, ``random_decoder_state``) are seeded, deterministic and in the official layouts,
for development and tests: compute cost does not depend on weight values, but outputs are not stylizations.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from model.errors import WeightsError, WeightsLayoutError, WeightsNotFoundError
from model.files import atomic_file, atomic_write
from model.network import (
    build_decoder_sequential,
    build_vgg_sequential,
    caffe_input_state,
    decoder_layout,
    torchvision_to_official,
    vgg_layout,
)
from model.pins import Weights, pinned, sha256_file, verify

__all__ = [
    "OFFICIAL_FILES",
    "OfficialFile",
    "check_layout",
    "fetch",
    "load_decoder_checkpoint",
    "load_encoder_state",
    "random_decoder_state",
    "random_state_sha256",
    "random_vgg_state",
    "read_state_dict",
    "save_decoder_checkpoint",
    "sha256_file",
    "state_sha256",
]

Layout = Mapping[str, tuple[int, ...]]
_CHUNK = 1 << 20
LOCAL_PINS = ".sha256-pins.json"


@dataclass(frozen=True)
class OfficialFile:
    """A downloadable weight file: its pinned record (source, hash, size) and the state-dict layout it must have."""

    weights: Weights
    layout: Callable[[], Layout]  # empty: the file is checked by load_encoder_state, which maps its layout


OFFICIAL_FILES: dict[str, OfficialFile] = {
    "vgg_normalised": OfficialFile(pinned("vgg_normalised"), vgg_layout),
    "decoder": OfficialFile(pinned("decoder"), decoder_layout),
    "vgg19_torchvision": OfficialFile(pinned("vgg19_torchvision"), lambda: {}),
}


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """A hash of the tensors themselves, in key order: the identity of weights that have no file (random)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu", torch.float32).contiguous()
        digest.update(key.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


random_state_sha256 = state_sha256


def _missing_message(path: Path) -> str:
    known = next((f.weights for f in OFFICIAL_FILES.values() if f.weights.filename == path.name), None)
    where = f" Download it from {known.url}" if known else ""
    return f"weight file {path} does not exist.{where} (or run `make weights`)."


def check_layout(state: Mapping[str, torch.Tensor], layout: Layout, *, what: str) -> None:
    """Raises WeightsLayoutError naming ``what`` and the first key that is missing, unexpected or misshapen."""
    for key, shape in layout.items():
        if key not in state:
            raise WeightsLayoutError(f"{what}: missing key {key!r} (expected shape {list(shape)})")
        if tuple(state[key].shape) != tuple(shape):
            raise WeightsLayoutError(
                f"{what}: key {key!r} has shape {list(state[key].shape)}, expected {list(shape)}"
            )
    for key in state:
        if key not in layout:
            raise WeightsLayoutError(f"{what}: unexpected key {key!r}")


def _load_raw(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsNotFoundError(_missing_message(path))
    try:
        if path.suffix == ".safetensors":
            return dict(load_file(str(path)))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsLayoutError(f"{path}: not a weights-only state dict ({type(exc).__name__}: {exc})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsLayoutError(f"{path}: expected a state dict of tensors")
    return dict(obj)


def read_state_dict(path: str | os.PathLike[str], layout: Layout, *, what: str = "") -> dict[str, torch.Tensor]:
    """Loads a state dict (``.pth`` weights-only, or ``.safetensors``) and checks it against ``layout``."""
    path = Path(path)
    state = _load_raw(path)
    check_layout(state, layout, what=f"{what + ' ' if what else ''}{path}")
    return state


def load_encoder_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str, str]:
    """Loads either encoder file layout; returns (state in the official 53-module layout, layout, sha256).

    The layout is ``"torchvision"`` for ``features.N.*`` keys (torchvision's VGG19) and ``"official"`` for ``N.*``
    keys (the official normalised VGG19). Which input normalisation each needs is decided in :mod:`model.encoders`.
    """
    path = Path(path)
    state = _load_raw(path)
    if any(key.startswith("features.") for key in state):
        features = {k: v for k, v in state.items() if k.startswith("features.")}
        try:
            state, layout = torchvision_to_official(features), "torchvision"
        except (KeyError, ValueError) as exc:
            raise WeightsLayoutError(f"encoder {path}: not a torchvision VGG19 state dict ({exc})") from None
    else:
        layout = "official"
    check_layout(state, vgg_layout(), what=f"encoder {path}")
    return state, layout, sha256_file(path)


def _he_init(seq: nn.Sequential, generator: torch.Generator) -> None:
    for module in seq:
        if isinstance(module, nn.Conv2d):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                module.bias.zero_()


def random_vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A deterministic random normalised VGG19 in the official layout.

    Module 0 is the real preprocessing (RGB [0, 1] -> BGR x255 minus the Caffe ImageNet mean); the 3x3 convs are
    He-initialised, so activations keep their scale through the ReLUs.
    """
    generator = torch.Generator().manual_seed(seed)
    seq = build_vgg_sequential()
    _he_init(seq, generator)
    return {**{k: v.clone() for k, v in seq.state_dict().items()}, **caffe_input_state()}


def random_decoder_state(seed: int = 0, vgg_state: Mapping[str, torch.Tensor] | None = None
                         ) -> dict[str, torch.Tensor]:
    """A deterministic random AdaIN decoder whose outputs land mostly inside [0, 1] behind an encoder: the official-
    layout ``vgg_state`` (default ``random_vgg_state(seed)``; the bundled VGG19's state gives real features).

    The last conv is rescaled so that, on a fixed synthetic input through that encoder, outputs have mean 0.5 and
    std 0.2: otherwise nearly every pixel would clamp to 0 or 255 and tests could not see differences.
    """
    generator = torch.Generator().manual_seed(seed + 1_000_003)
    seq = build_decoder_sequential()
    _he_init(seq, generator)
    encoder = build_vgg_sequential()[:31]
    state = random_vgg_state(seed) if vgg_state is None else vgg_state
    encoder.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < 31})
    probe = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = seq(encoder(probe))
        scale = 0.2 / out.std().clamp_min(1e-12)
        seq[-1].weight.mul_(scale)
        seq[-1].bias.copy_(seq[-1].bias * scale + (0.5 - out.mean() * scale))
    return {k: v.clone() for k, v in seq.state_dict().items()}


def save_decoder_checkpoint(
    path: str | os.PathLike[str],
    state: Mapping[str, torch.Tensor],
    *,
    encoder_sha256: str,
    metadata: Mapping[str, str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> str:
    """Writes a decoder as safetensors (atomically) with the encoder it was trained against; returns its sha256.

    ``dtype`` float16 halves the file for shipping; loading converts back to the model's dtype.
    """
    path = Path(path)
    check_layout(state, decoder_layout(), what=f"decoder {path}")
    meta = {**(metadata or {}), "encoder_sha256": encoder_sha256, "format": "styletransfer.decoder.v1"}
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, safetensors_bytes(tensors, metadata={k: str(v) for k, v in meta.items()}))
    return sha256_file(path)


def load_decoder_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str | None, dict]:
    """Loads a decoder (official ``decoder.pth`` or our safetensors); returns (state, encoder_sha256, metadata).

    The official file carries no metadata, so its encoder is unknown (None) and the caller decides.
    """
    path = Path(path)
    state = read_state_dict(path, decoder_layout(), what="decoder")
    if path.suffix != ".safetensors":
        return state, None, {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    return state, metadata.get("encoder_sha256"), metadata


def _local_pins(dest: Path) -> dict[str, str]:
    path = dest / LOCAL_PINS
    return json.loads(path.read_text()) if path.is_file() else {}


def _record_local_pin(dest: Path, filename: str, digest: str) -> None:
    pins = {**_local_pins(dest), filename: digest}
    atomic_write(dest / LOCAL_PINS, (json.dumps(pins, indent=2, sort_keys=True) + "\n").encode())


def verify_file(path: Path, official: OfficialFile, dest: Path) -> str:
    """Checks a (downloaded) file: :func:`model.pins.verify` against its record, with the hash pinned on first use in
    ``dest`` when the record has none; then its layout. Returns its sha256."""
    record = official.weights
    if not record.sha256:
        record = replace(record, sha256=_local_pins(dest).get(record.filename))
    digest = verify(record, path)
    if official.layout():
        read_state_dict(path, official.layout(), what=record.name)
    else:
        load_encoder_state(path)
    return digest


def _download(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> None:
    """Streams ``url`` into ``out``; a body shorter than its Content-Length is an error."""
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsError(f"cannot download {url}: {exc}") from None
    with response:
        expected = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        desc = url.rpartition("/")[2]
        with tqdm(total=expected, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, ValueError) as exc:
                    raise WeightsError(f"download of {url} broke off after {received} bytes: {exc}") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise WeightsError(f"download of {url} is truncated: {received} of {expected} bytes")


def fetch(
    name: str, dest_dir: str | os.PathLike[str], *, url: str | None = None, progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Downloads an official file into ``dest_dir`` (atomically, verified); a verified file already there is kept."""
    if name not in OFFICIAL_FILES:
        raise ValueError(f"unknown weight file {name!r}; known: {', '.join(OFFICIAL_FILES)}")
    official = OFFICIAL_FILES[name]
    record = official.weights
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / record.filename
    if final.is_file():
        verify_file(final, official, dest)
        return final
    with atomic_file(final) as out:  # a download that fails or does not verify leaves nothing behind
        _download(url or record.url, out, timeout=timeout, progress=progress)
        out.flush()
        digest = verify_file(Path(out.name), official, dest)
    if not record.sha256 and record.filename not in _local_pins(dest):
        _record_local_pin(dest, record.filename, digest)
    return final


def main(argv: list[str] | None = None) -> int:
    """``python -m model fetch|verify`` (``model/__main__.py``): the entry point behind ``make weights``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m model", description="fetch and verify weight files")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="download the official AdaIN files (verified, atomic)")
    fetch_cmd.add_argument("--dest", default="weights")
    fetch_cmd.add_argument("--only", default="vgg_normalised,decoder", help="comma-separated names")
    fetch_cmd.add_argument("--url-override", action="append", default=[], metavar="NAME=URL")
    fetch_cmd.add_argument("--quiet", action="store_true")
    verify_cmd = sub.add_parser("verify", help="check files' hashes and layouts")
    verify_cmd.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            overrides = dict(item.split("=", 1) for item in args.url_override)
            for name in filter(None, args.only.split(",")):
                path = fetch(name, args.dest, url=overrides.get(name), progress=not args.quiet)
                print(f"{path}: ok ({sha256_file(path)})")
        else:
            for raw in args.paths:
                path = Path(raw)
                official = next((f for f in OFFICIAL_FILES.values() if f.weights.filename == path.name), None)
                if official is None:
                    raise WeightsError(f"{path}: not an official file name ({', '.join(OFFICIAL_FILES)})")
                print(f"{path}: ok ({verify_file(path, official, path.parent)})")
    except (WeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
