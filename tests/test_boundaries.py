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
    modules = loaded_modules("import clients.client, clients.cli, clients.video, av")  # av: the video command's
    assert "torch" not in modules and "model" not in modules


def test_server_entry_point_loads_no_torch_before_tuning_malloc() -> None:
    # `python -m server` tunes glibc malloc before torch starts threads (server/malloc.py): what it imports first
    # must not pull torch in.
    modules = loaded_modules("import server.__main__")
    assert "torch" not in modules


def test_importing_the_configuration_loads_no_torch() -> None:
    # The families' declarations are read to build the flags: they must not start torch (server/malloc.py).
    assert "torch" not in loaded_modules("import server.config, model.registry")


# The Train job trains AdaIN decoders: its runner is that family's job, as the Gatys runner is Gatys's.
FAMILY_JOBS = {"server/jobs/train_runner.py"}


def test_the_server_names_no_model_family() -> None:
    """The server learns families from their declarations (model/registry.py) only: it imports no family's package
    and names none in code (outside the runners of family-specific jobs)."""
    import ast
    from pathlib import Path

    from model.registry import FAMILIES

    root = Path(__file__).resolve().parents[1]
    names = {family.name for family in FAMILIES}
    for path in sorted((root / "server").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in FAMILY_JOBS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[:2] not in [["model", n] for n in names], f"{rel} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[:2] in [["model", n] for n in names] for a in node.names), rel
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in names, f"{rel} names the family {node.value!r}"
