"""The Node.js example client (clients/node) against a real server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import png_bytes

pytestmark = pytest.mark.slow  # installs and runs the Node.js client

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")

@pytest.fixture(scope="module")
def node_client() -> Path:
    """The example script, with its dependencies installed from the lock file when they are missing."""
    assert NODE and NPM, "node and npm are missing: `make test` installs Debian's nodejs and npm"
    if not (NODE_DIR / "node_modules").is_dir():
        subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True,
                       timeout=300)
    return NODE_DIR / "stylize.js"


def run_client(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NODE, str(script), *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=120)


def write_images(tmp_path: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    content.write_bytes(png_bytes(40, 30, 1))
    style.write_bytes(png_bytes(32, 32, 2))
    return content, style


def test_node_client_stylizes(server, node_client: Path, tmp_path: Path) -> None:
    content, style = write_images(tmp_path)
    out = tmp_path / "out.png"
    result = run_client(node_client, server.target, str(content), str(style), str(out), "0.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out} 40x30 image/png\n"
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (40, 30)


def test_node_client_reports_invalid_argument(server, node_client: Path, tmp_path: Path) -> None:
    content, style = write_images(tmp_path)
    out = tmp_path / "out.png"
    result = run_client(node_client, server.target, str(content), str(style), str(out), "3")
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "alpha" in result.stderr
    assert result.stdout == "" and not out.exists()


def test_node_stream_example_stylizes_frames_and_reports_a_bad_one(server, node_client: Path,
                                                                    tmp_path: Path) -> None:
    content, style = write_images(tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    script = node_client.with_name("stream.js")
    result = run_client(script, server.target, str(style), str(tmp_path), str(content), str(bad), str(content))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"frame 0: {tmp_path / '0.jpg'} 40x30 ")
    assert lines[1].startswith("frame 1: INVALID_ARGUMENT frame.image")
    assert lines[2].startswith("frame 2: ") and len(lines) == 3
    with Image.open(tmp_path / "2.jpg") as image:
        assert image.format == "JPEG" and image.size == (40, 30)
