"""Every ``python`` block of README.md runs as printed against a real server.

The convention the README states: a block reaches the server as ``localhost:50051`` (replaced here by the test
server's address) and finds the images it names (``photo.jpg``, ``starry.jpg``...) in its working directory (made
here as small images).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.server.conftest import RunningServer

README = Path(__file__).resolve().parents[2] / "README.md"
README_TARGET = "localhost:50051"
IMAGE_NAME = re.compile(r"""["']([\w-]+\.(?:jpg|jpeg|png|webp))["']""")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each fenced ``python`` block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL):
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


BLOCKS = python_blocks(README.read_text())


def _write_images(code: str, folder: Path) -> None:
    for seed, name in enumerate(sorted(set(IMAGE_NAME.findall(code)))):
        color = (40 * seed % 256, 90, 200 - 30 * seed % 200)
        Image.new("RGB", (128, 96), color).save(folder / name)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2
    assert all(README_TARGET in code for _, code in BLOCKS if "StyleClient(" in code)


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_block_runs_as_printed(line: int, code: str, start_server: Callable[..., RunningServer],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server(gatys_default_iterations=2)
    _write_images(code, tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace(README_TARGET, server.target), f"README.md:{line}", "exec"), {"__name__": "__readme__"})
