"""What is shipped: the wheel carries every data file the code opens; the image has a real health probe.

The wheel is built from a copy of the tree (``pip wheel --no-deps --no-build-isolation``: the venv's pinned
setuptools, no network), so the working tree gets no build/ or egg-info.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the wheel

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"model": "model", "server": "server", "clients": "clients",
            "clients/generated/styletransfer": "styletransfer"}  # folder in the tree -> folder in the wheel
NOT_PACKAGE_DATA = ("clients/node", "clients/generated")  # its own npm project; the stubs are their own package
# Path(__file__).with_name("x") and Path(__file__).parent / "x": how the code finds files next to itself.
OPENS_NEXT_TO_ITSELF = re.compile(r"""Path\(__file__\)(?:\.with_name\(|\.parent\s*/\s*)["']([^"']+)["']""")
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "node_modules", "__pycache__", "data", "weights", ".pytest_cache",
                                     ".ruff_cache", "build", "*.egg-info", "results")


def _shipped_name(path: Path) -> str:
    """The path ``path`` (a file in the tree) has inside the wheel."""
    rel = path.relative_to(ROOT).as_posix()
    for folder, target in sorted(PACKAGES.items(), key=lambda item: -len(item[0])):
        if rel.startswith(folder + "/"):
            return target + rel[len(folder):]
    raise AssertionError(f"{rel} is in no package")


def data_files() -> set[Path]:
    """Every non-Python file inside the packages (README.md files are documentation, not data)."""
    files = set()
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT).as_posix()
            elsewhere = folder == "clients" and any(rel.startswith(p + "/") for p in NOT_PACKAGE_DATA)
            if (path.is_file() and path.suffix not in (".py", ".pyc") and path.name != "README.md" and not elsewhere
                    and "__pycache__" not in path.parts):
                files.add(path)
    return files


def opened_files() -> set[Path]:
    """The files (or every file of the folders) the code opens next to its own modules."""
    found = set()
    for folder in ("model", "server", "clients"):
        for module in (ROOT / folder).rglob("*.py"):
            for name in OPENS_NEXT_TO_ITSELF.findall(module.read_text()):
                target = module.parent / name
                found |= {p for p in target.rglob("*") if p.is_file()} if target.is_dir() else {target}
    return found


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    src = tmp_path_factory.mktemp("src") / "styletransfer"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    out = src.parent / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("styletransfer-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_code_opens_files_the_check_knows_about() -> None:
    opened = {p.relative_to(ROOT).as_posix() for p in opened_files()}
    assert "model/weights_pins.json" in opened and "server/http/static/index.html" in opened
    assert opened_files() <= data_files() | {p for p in opened_files() if not p.exists()}


def test_the_wheel_carries_every_data_file_the_code_opens(wheel_names: set[str]) -> None:
    missing = sorted(_shipped_name(p) for p in data_files() | {p for p in opened_files() if p.exists()}
                     if _shipped_name(p) not in wheel_names)
    assert not missing, f"not in the wheel: {missing}"
    assert "model/weights_pins.json" in wheel_names  # without it an installed server trusts downloads


def test_the_image_has_a_real_health_check_and_ignores_node_modules() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK .*\n(?:.*\n)*?.*CMD (.*)$", dockerfile, flags=re.MULTILINE)
    assert healthcheck and "server.healthcheck" in healthcheck.group(1)
    assert "clients/node/node_modules" in (ROOT / ".dockerignore").read_text().split()
