"""Real servers on 127.0.0.1 (free ports) with random weights, run in a background event loop per server."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest

from model.adain.stylizer import AdaINModel
from model.declaration import Family
from model.family import StyleModel
from model.registry import FAMILIES
from server.app import Server
from server.config import Config
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc
from tests.helpers import free_port
from tests.server.postgres import PostgresServer


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


@pytest.fixture(scope="session")
def shared_model() -> AdaINModel:
    return AdaINModel.random(seed=0, device="cpu")


def base_config(**overrides) -> Config:
    config = Config(host="127.0.0.1", port=0, metrics_port=0, metrics_host="127.0.0.1", random_weights=True,
                    grace_period=5.0)
    return dataclasses.replace(config, **overrides)


@pytest.fixture
def start_server(tmp_path: Path, shared_model: AdaINModel) -> Iterator[Callable[..., RunningServer]]:
    """Starts servers with config overrides and the models to serve: the shared random AdaIN model by default, or
    the models ``families`` build from the configuration when those are given; all are stopped at the end of the
    test."""
    servers: list[RunningServer] = []

    def start(*, models: Sequence[StyleModel] | None = None, families: Sequence[Family] | None = None,
              **overrides) -> RunningServer:
        overrides.setdefault("data_dir", str(tmp_path / "data"))
        overrides.setdefault("metrics_port", free_port())
        if families is not None:
            server = RunningServer(base_config(**overrides), models, families)
        else:
            server = RunningServer(base_config(**overrides), [shared_model] if models is None else models)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(1.0)


@pytest.fixture
def server(start_server: Callable[..., RunningServer]) -> RunningServer:
    return start_server()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session; tests take a fresh database each (``new_database``)."""
    server = PostgresServer().start()
    yield server
    server.stop()
