"""What tests share: tiny deterministic images, requests and clips, bounded waits, free ports, raw HTTP, real
servers on 127.0.0.1 (in this process or in their own), and a model that holds its calls until a test lets them go."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from model.declaration import Family
from model.errors import Cancelled
from model.family import BatchItem, StyleModel
from model.network import StopCheck
from model.registry import FAMILIES
from server.app import Server
from server.config import Config
from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc


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


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (the pixel data is absent)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# --- requests -----------------------------------------------------------------------------------------------------

def gatys_request(iterations: int = 8, **fields) -> pb.GatysRequest:
    """A small Gatys job (64x48 content, 64 px style)."""
    styles = [pb.StyleInput(image=png_bytes(64, 64, seed=2))]
    return pb.GatysRequest(content=png_bytes(64, 48, seed=1), styles=styles, iterations=iterations, **fields)


def make_datasets(root: Path) -> None:
    """Two tiny training folders under ``root`` ("faces" with one corrupt file, "house-style")."""
    for kind, offset in (("faces", 0), ("house-style", 50)):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            make_image(64, 64, seed=offset + i).save(root / kind / f"{i}.png")
    (root / "faces" / "corrupt.png").write_bytes(b"\x89PNG broken")


def train_request(**fields) -> pb.TrainRequest:
    """A few steps of training on :func:`make_datasets`' folders."""
    base = {"content_dir": "faces", "style_dir": "house-style", "iterations": 12, "batch_size": 2,
            "image_size": 32, "lr": 3e-5, "checkpoint_every": 6, "model_name": "avatars", "seed": 1}
    return pb.TrainRequest(**{**base, **fields})


# --- servers ------------------------------------------------------------------------------------------------------

def base_config(**overrides) -> Config:
    """A server on 127.0.0.1 with random weights, with ``overrides``; float32 whatever the CPU (tests compare with
    float32 models; tests/server/test_precision.py covers the rest)."""
    config = Config(host="127.0.0.1", port=0, metrics_port=0, metrics_host="127.0.0.1", random_weights=True,
                    grace_period=5.0, precision="fp32")
    return dataclasses.replace(config, **overrides)


class RunningServer:
    """A ``server.app.Server`` started on its own event loop thread; ``stop()`` drains it."""

    def __init__(self, config: Config, models: StyleModel | Sequence[StyleModel] | None,
                 families: Sequence[Family] = FAMILIES) -> None:
        """Serves ``models``; None builds them from ``families``, as ``python -m server`` does."""
        models = [models] if isinstance(models, StyleModel) else None if models is None else list(models)
        self.config = config
        self.families = families
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server = self._run(self._start(models))
        self.target = f"127.0.0.1:{self.server.port}"
        self.channels: list[grpc.Channel] = []

    def _run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, models: Sequence[StyleModel] | None) -> Server:
        server = Server(self.config, models=models, families=self.families)
        await server.start()
        return server

    def channel(self, **kwargs) -> grpc.Channel:
        channel = grpc.insecure_channel(self.target, **kwargs)
        self.channels.append(channel)
        return channel

    def stub(self) -> pb_grpc.StyleTransferStub:
        return pb_grpc.StyleTransferStub(self.channel())

    @property
    def http_url(self) -> str:
        """The HTTP gateway's base URL (the server needs ``http_port``)."""
        return f"http://127.0.0.1:{self.server.http_port}"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.metrics_port}/metrics", timeout=10) as r:
            return r.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample (0 when absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            sample, _, raw = key.partition("{")
            if sample == name and ",".join(sorted(raw.rstrip("}").split(","))) == wanted:
                return float(value)
        return 0.0

    def stop(self, grace: float = 5.0) -> None:
        if not self.thread.is_alive():
            return
        for channel in self.channels:
            channel.close()
        self._run(self.server.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def is_serving(channel: grpc.Channel, timeout: float = 1) -> bool:
    """Whether the server behind ``channel`` answers its health check with SERVING within ``timeout`` seconds."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


class Gate:
    """Serves ``model``, but holds every Stylize at its start until the test lets it go (``release`` for a number of
    calls, ``release_all`` for every call from then on), stopping early, as a real model does between layers, when
    the call is cancelled or its deadline passes. A test decides when each call finishes, on a machine of any speed.
    ``entered`` counts the calls that reached the model."""

    def __init__(self, model: StyleModel) -> None:
        self._model = model
        self.info, self.capabilities, self.presets = model.info, model.capabilities, model.presets
        self.entered = 0
        self._lock = threading.Lock()
        self._arrived = threading.Semaphore(0)
        self._passes = threading.Semaphore(0)
        self._open = threading.Event()

    @property
    def code_identity(self) -> str:
        return self._model.code_identity

    def check(self, styles, options) -> None:
        self._model.check(styles, options)

    def encode_style(self, image: Image.Image, **kwargs):
        return self._model.encode_style(image, **kwargs)

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                      ) -> list[Image.Image]:
        with self._lock:
            self.entered += 1
        self._arrived.release()
        bound = time.monotonic() + 120  # a hang bound: a test that forgot to release fails instead of hanging
        while not (self._open.is_set() or self._passes.acquire(timeout=0.01)):
            if should_stop is not None and should_stop():
                raise Cancelled("stopped while held")
            assert time.monotonic() < bound, "the test never released this call"
        return self._model.stylize_batch(items, should_stop=should_stop)

    def release(self, calls: int = 1) -> None:
        for _ in range(calls):
            self._passes.release()

    def release_all(self) -> None:
        self._open.set()

    def wait_entered(self, timeout: float = 60) -> None:
        """Returns when one more call has reached the model (fails the test after ``timeout``, a hang bound)."""
        assert self._arrived.acquire(timeout=timeout), "no call reached the model"


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


def raw_http(port: int, request: bytes, timeout: float = 60.0, *, body: bool = True) -> RawReply:
    """Sends ``request`` exactly as given (malformed ones too) to 127.0.0.1:``port`` and reads one reply (without
    its body for ``body=False``: the reply to a HEAD). A server that answers before the whole request is sent (and
    stops reading) is fine: its reply is still read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_reply(sock, body=body)


def read_reply(sock: socket.socket, *, body: bool = True) -> RawReply:
    """The next reply on ``sock`` (Content-Length, chunked, or until the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete reply: {data[:200]!r}")
        data += chunk
    head, _, content = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if not body:
        pass
    elif "content-length" in headers:
        while len(content) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            if not chunk:
                break
            content += chunk
    else:
        with contextlib.suppress(ConnectionError, TimeoutError):
            while chunk := sock.recv(65536):
                content += chunk
    return RawReply(int(status_line.split()[1]), headers, content)


@dataclasses.dataclass
class ServerProcess:
    proc: subprocess.Popen
    channel: grpc.Channel
    stub: pb_grpc.StyleTransferStub


def random_weights_args(data_dir: Path, port: int, *flags: str) -> list[str]:
    """The arguments of a server with random weights on 127.0.0.1:``port`` (metrics off), then ``flags``."""
    return ["--random-weights", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0", "--data-dir",
            str(data_dir), *flags]


@contextlib.contextmanager
def server_process(args: Sequence[str], port: int, log: Path, *, cwd: Path | None = None,
                   env: Mapping[str, str] | None = None, preexec_fn=None, timeout: float = 300
                   ) -> Iterator[ServerProcess]:
    """``python -m server ARGS`` in its own process (to SIGKILL it, cap its memory, run several, or run it as
    ``make run`` does), serving gRPC on 127.0.0.1:``port`` (``ARGS`` must say so), its output in ``log``. Yields once
    its health is SERVING (failing with the log's tail if it exits first); at the end it is stopped with SIGTERM, and
    killed if it has not drained within a minute."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server", *args], cwd=cwd, stdout=out, stderr=out,
                                env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
                                preexec_fn=preexec_fn)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def serving() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        return is_serving(channel)

    try:
        wait_for(serving, timeout=timeout)
        yield ServerProcess(proc, channel, pb_grpc.StyleTransferStub(channel))
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
