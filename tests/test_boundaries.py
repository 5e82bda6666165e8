"""The package boundaries: the model knows nothing of gRPC; the client never loads torch."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "module",
    ["model", "model.adain", "model.adain.tiling", "model.adain.fast", "model.weights", "model.gatys", "model.magenta"],
)
def test_model_imports_no_grpc_or_protobuf(module: str) -> None:
    modules = loaded_modules(f"import {module}")
    assert not {m for m in modules if m.split(".")[0] in ("grpc", "google", "server", "clients")}


def test_client_imports_no_torch() -> None:
    modules = loaded_modules("import clients.client, clients.cli")
    assert "torch" not in modules and "model" not in modules


def test_server_entry_point_loads_no_torch_before_tuning_malloc() -> None:
    # `python -m server` tunes glibc malloc before torch starts threads (server/malloc.py): what it imports first
    # must not pull torch in.
    modules = loaded_modules("import server.__main__")
    assert "torch" not in modules
