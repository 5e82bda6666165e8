"""Tiny deterministic test images and small test utilities."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

if TYPE_CHECKING:
    from model.family import StyleModel


def make_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random image (like a photo: neighbouring pixels correlate), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    return image.convert(mode) if mode != "RGB" else image


def encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    return encode(make_image(width, height, seed))


def wait_for(predicate, timeout: float = 30.0) -> None:
    """Polls ``predicate`` (bounded); fails the test if it never holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for endpoints whose port 0 means "off")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gate:
    """A model whose every ``stylize_batch`` call waits for a release: frames finish exactly when a test says."""

    def __init__(self, model: StyleModel) -> None:
        self._model = model
        self.info = model.info
        self.capabilities = model.capabilities
        self.presets = model.presets
        self.entered = threading.Semaphore(0)  # one release per call that has started
        self._open = threading.Semaphore(0)

    @property
    def code_identity(self) -> str:
        return self._model.code_identity

    def check(self, styles, options) -> None:
        self._model.check(styles, options)

    def encode_style(self, image, **kwargs):
        return self._model.encode_style(image, **kwargs)

    def stylize_batch(self, items, *, should_stop=None):
        self.entered.release()
        assert self._open.acquire(timeout=60), "the test never released this frame"
        return self._model.stylize_batch(items, should_stop=should_stop)

    def release(self, frames: int = 1) -> None:
        for _ in range(frames):
            self._open.release()

    def wait_entered(self) -> None:
        assert self.entered.acquire(timeout=60), "no frame reached the model"


def install_decoder(registry, name: str, encoder_sha256: str, folder, metadata: dict[str, str] | None = None,
                    seed: int = 1):
    """Installs a random decoder as the trained AdaIN model ``name`` of a ``server.models.ModelRegistry``, as a
    Train job does; returns the model."""
    from model.weights import random_decoder_state, save_decoder_checkpoint

    checkpoint = folder / f"{name}.safetensors"
    save_decoder_checkpoint(checkpoint, random_decoder_state(seed), encoder_sha256=encoder_sha256)
    return registry.register(name, "adain", {"decoder": checkpoint}, metadata or {"steps": "3"})


class RawReply:
    """One HTTP reply read off a socket: status, headers (lower-case names) and body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> object:
        return json.loads(self.body)


def http_request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                 *, length: bool = True) -> bytes:
    """An HTTP/1.1 request as bytes, headers as given (bytes in them are sent as their latin-1 code points)."""
    headers = {"Host": "127.0.0.1", **(headers or {})}
    lines = [f"{method} {path} HTTP/1.1", "Connection: close"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def raw_http(port: int, request: bytes, timeout: float = 60.0) -> RawReply:
    """Sends ``request`` exactly as given (malformed ones too) to 127.0.0.1:``port`` and reads one reply. A server
    that answers before the whole request is sent (and stops reading) is fine: its reply is still read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_reply(sock)


def read_reply(sock: socket.socket) -> RawReply:
    """The next reply on ``sock`` (Content-Length, chunked, or until the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete reply: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    else:
        with contextlib.suppress(ConnectionError, TimeoutError):
            while chunk := sock.recv(65536):
                body += chunk
    return RawReply(int(status_line.split()[1]), headers, body)


@contextlib.contextmanager
def server_process(args: Sequence[str], port: int, log: Path, *, cwd: Path | None = None,
                   env: Mapping[str, str] | None = None, timeout: float = 300) -> Iterator[subprocess.Popen]:
    """``python -m server ARGS`` in its own process, serving gRPC on 127.0.0.1:``port`` (``ARGS`` must say so), its
    output in ``log``. Yields once its health is SERVING (failing with the log's tail if it exits first); at the end
    it is stopped with SIGTERM, and killed if it has not drained within a minute."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server", *args], cwd=cwd, stdout=out, stderr=out,
                                env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(channel)

    def serving() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    try:
        wait_for(serving, timeout=timeout)
        yield proc
    finally:
        channel.close()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


CLIP_RATE = 12  # frames per second of write_clip's clips


def write_clip(path: Path, frames: int = 8, size: tuple[int, int] = (64, 48), audio: str | None = "aac") -> None:
    """A small clip: a camera panning over a smooth random scene, and (unless ``audio`` is None) a 440 Hz tone of
    the clip's length in that codec."""
    import av  # local: the tests that write no video need no PyAV

    width, height = size
    scene = make_image(width + 2 * frames, height + frames, seed=3)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=CLIP_RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream(audio, rate=16000, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_image(scene.crop((2 * i, i, 2 * i + width, i + height)))
            frame.pts = i
            out.mux(stream.encode(frame))
        if sound is not None:
            t = np.arange(16000 * frames // CLIP_RATE) / 16000
            tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                              format="fltp", layout="mono")
            tone.sample_rate, tone.pts = 16000, 0
            out.mux(sound.encode(tone))
            out.mux(sound.encode(None))
        out.mux(stream.encode(None))
