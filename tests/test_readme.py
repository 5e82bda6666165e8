"""Every ``python`` and ``sh`` block of README.md and docs/*.md runs as printed against the server ``make run`` starts.

The server is ``python -m server`` with ``make run``'s flags (``--data-dir``, ``--http-port``), real weights and no
``--random-weights``, from the repository root, on free 127.0.0.1 ports: whatever a fresh checkout serves. The
examples name ``localhost:50051`` and ``http://localhost:8080``; only those addresses are rewritten (the CLI gets
``STYLETRANSFER_TARGET``). Each block runs in a folder holding small images under the names it uses. Shell blocks
run under ``bash -euo pipefail`` with the venv's programs first on ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import free_port, make_image, server_process, write_clip

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GRPC_ADDRESS = "localhost:50051"
HTTP_URL = "http://localhost:8080"
IMAGE_NAME = re.compile(r"\b[\w-]+\.(?:jpg|jpeg|png|webp)\b")
# Outputs the examples write: never made as inputs.
OUTPUT_FLAG = re.compile(r"(?:-o\s+|>\s*|\.save\(\")([\w-]+\.\w+)")
# The images the examples read: small, and large enough for Gatys' two scales (each at least 40 px).
SIZE = (128, 96)
FRAMES = 6  # frames of the clip and of the folder the video examples read


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}:{self.language}"


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced ``python`` and ``sh`` blocks of a page, with the line each starts on (``console`` blocks, such as
    ``make`` or ``docker`` commands, are not run)."""
    text, name = page.read_text(), page.relative_to(ROOT).as_posix()
    return [Block(name, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2))
            for m in re.finditer(r"^```(python|sh)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)]


BLOCKS = [block for page in PAGES for block in fenced_blocks(page)]


def write_inputs(code: str, folder: Path) -> list[str]:
    """Small images under every name the code reads (masks: a white half), so it runs as printed; a short clip and
    a folder of numbered frames where the code reads ``clip.mp4`` or ``frames``."""
    outputs = set(OUTPUT_FLAG.findall(code))
    names = sorted(set(IMAGE_NAME.findall(code)) - outputs)
    for seed, name in enumerate(names):
        if name.startswith(("fg", "bg")):
            image = Image.new("L", SIZE, 0)
            image.paste(255, (0, 0, SIZE[0] // 2, SIZE[1]) if name.startswith("fg") else (SIZE[0] // 2, 0, *SIZE))
        else:
            image = make_image(*SIZE, seed, "RGBA" if name.endswith(".png") else "RGB")
        image.save(folder / name)
    if re.search(r"""(?:\s|["'])frames(?:\s|["'])""", code):
        (folder / "frames").mkdir()
        for i in range(1, FRAMES + 1):
            make_image(*SIZE, 100 + i).save(folder / "frames" / f"frame_{i}.png")
        names.append("frames")
    if "clip.mp4" in code:
        write_clip(folder / "clip.mp4", frames=FRAMES, size=SIZE)  # with an audio track, which the video keeps
        names.append("clip.mp4")
    return names


def _frames_in(video: Path) -> int:
    import av

    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


class BlockFailed(AssertionError):
    """A block exited non-zero; ``stderr`` is what it printed there."""

    def __init__(self, block: Block, stderr: str) -> None:
        super().__init__(f"{block.id} failed:\n{stderr[-3000:]}")
        self.stderr = stderr


@dataclass(frozen=True)
class ServerProcess:
    target: str
    http_url: str
    log: Path


@contextmanager
def make_run_server(folder: Path) -> Iterator[ServerProcess]:
    """``python -m server`` as ``make run`` starts it, on free 127.0.0.1 ports; stopped (SIGTERM) at the end."""
    port, http_port, metrics_port = free_port(), free_port(), free_port()
    log = folder / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLETRANSFER_")}
    args = ["--data-dir", str(folder / "data"), "--http-port", str(http_port), "--host", "127.0.0.1",
            "--port", str(port), "--metrics-port", str(metrics_port)]
    with server_process(args, port, log, cwd=ROOT, env=env):
        yield ServerProcess(f"127.0.0.1:{port}", f"http://127.0.0.1:{http_port}", log)


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with make_run_server(tmp_path_factory.mktemp("readme-server")) as server:
        yield server


def shell_env(server: ServerProcess, folder: Path) -> dict[str, str]:
    """The venv's programs first on PATH (``make system-deps`` puts grpcurl there when no package manager has it)
    and the CLI pointed at the server."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLETRANSFER_")}
    path = os.pathsep.join([venv_bin, env.get("PATH", "")])
    if shutil.which("grpcurl", path=path) is None:
        pytest.fail("grpcurl is not installed: `make system-deps` installs it")
    return {**env, "PATH": path, "STYLETRANSFER_TARGET": server.target, "PYTHONPATH": str(ROOT)}


def run_block(block: Block, server: ServerProcess, folder: Path) -> str:
    """Runs one block as printed (addresses rewritten) and returns what it printed."""
    code = block.code.replace(GRPC_ADDRESS, server.target).replace(HTTP_URL, server.http_url)
    if block.language == "python":
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=shell_env(server, folder),
                              capture_output=True, text=True, timeout=600)
    else:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=folder, env=shell_env(server, folder),
                              capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BlockFailed(block, done.stderr)
    return done.stdout


def test_the_readme_has_examples_of_every_kind() -> None:
    readme = [b for b in BLOCKS if b.page == "README.md"]
    languages = [b.language for b in readme]
    assert languages.count("python") >= 2 and languages.count("sh") >= 3
    assert any("grpcurl" in b.code for b in readme) and any("curl " in b.code for b in readme)
    assert all(GRPC_ADDRESS in b.code for b in BLOCKS if "StyleClient(" in b.code)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a hang bound: the first block also waits for the server to load its models
@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_block_runs_as_printed(block: Block, readme_server: ServerProcess, tmp_path: Path) -> None:
    inputs = write_inputs(block.code, tmp_path)
    stdout = run_block(block, readme_server, tmp_path)
    written = [p for p in tmp_path.iterdir() if p.name not in inputs and not p.name.startswith(".")]
    assert written or "print(" in block.code or "grpcurl" in block.code
    for path in written:
        if path.suffix in (".png", ".jpg", ".webp"):
            with Image.open(path) as image:
                assert image.size == SIZE, path.name  # every example keeps the content's size
        elif path.suffix in (".mp4", ".webm"):
            assert _frames_in(path) == FRAMES, path.name
        elif path.is_dir():
            assert len(list(path.glob("*.png"))) == FRAMES, path.name
    if "StyleTransferError" in block.code:
        assert stdout.startswith("NOT_FOUND ") and "magenta" in stdout
    if "curl -s -H" in block.code:
        assert '"status": "INVALID_ARGUMENT"' in stdout and "magenta untrained=false" in stdout
    if "grpcurl" in block.code:
        assert "styletransfer.v1.StyleTransfer" in stdout and "rpc Stylize" in stdout
    if "jobs list" in block.code:
        assert "gatys  succeeded" in stdout


def test_make_run_serves_what_is_here_and_downloads_nothing() -> None:
    """The quick start's ``make run``: one command, the server, with the gateway on :8080 and no download first."""
    # --no-print-directory: under `make test` this make is a sub-make, which would also print the directories it enters
    done = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    (command,) = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert command[1:3] == ["-m", "server"] and command[command.index("--http-port") + 1] == "8080"


def test_make_weights_entry_point_runs_without_warnings() -> None:
    done = subprocess.run([sys.executable, "-W", "error", "-m", "model", "fetch", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--dest" in done.stdout, done.stderr


@pytest.mark.slow
def test_the_start_up_log_says_briefly_what_is_served_and_what_is_missing(readme_server: ServerProcess) -> None:
    lines = [line.split("] ", 1)[-1] for line in readme_server.log.read_text().splitlines()]
    assert all(len(line) <= 120 for line in lines), max(lines, key=len)
    assert "serving magenta (magenta/v1-256-int8)" in lines
    assert any(line.startswith("serving Gatys jobs (VGG19: ") for line in lines)
    if not (ROOT / "weights" / "vgg_normalised.pth").is_file():
        assert "not serving adain: weights/vgg_normalised.pth is missing (`make weights` fetches it)" in lines
    listening = next(i for i, line in enumerate(lines) if line.startswith("serving styletransfer.v1.StyleTransfer on"))
    url = next(i for i, line in enumerate(lines) if line.startswith("HTTP/JSON gateway and playground on http://"))
    assert url > listening  # the URL is printed once the server listens


def _normalised(line: str) -> str:
    """A log line without its time, addresses, numbers (ports, thread counts) and precision choice, which differ
    between machines."""
    line = re.sub(r"^\S+ \S+ (?=[A-Z]+ )", "", line)  # the date and time
    line = re.sub(r"(torch precision) .*", r"\1 ...", line)
    return re.sub(r"\d+", "N", re.sub(r"\b(?:127\.0\.0\.1|0\.0\.0\.0|localhost)\b", "HOST", line))


@pytest.mark.slow
def test_the_readmes_start_up_log_is_what_the_server_prints(readme_server: ServerProcess) -> None:
    text = (ROOT / "README.md").read_text()
    start = text.index("```console\n", text.index("`make run`'s log says")) + len("```console\n")
    shown = text[start:text.index("```", start)].splitlines()
    log = readme_server.log.read_text().splitlines()
    ready = next(i for i, line in enumerate(log) if "HTTP/JSON gateway and playground on" in line)
    printed = [_normalised(line) for line in log[:ready + 1]]  # the start-up, not what requests logged since
    if (ROOT / "weights" / "vgg_normalised.pth").is_file():  # this checkout has the AdaIN weights
        shown = [line for line in shown if "not serving adain" not in line]
        printed = [line for line in printed if "serving adain" not in line]
    assert [_normalised(line) for line in shown] == printed
