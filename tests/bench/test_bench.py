"""`python -m bench` reports each section as it goes and keeps what it measured when stopped half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]


def _bench(out: Path, sections: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'generated'}"}
    return subprocess.Popen([sys.executable, "-m", "bench", "--quick", "--device", "cpu", "--sections", sections,
                             "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow  # the benchmark in a subprocess
def test_each_section_is_written_as_soon_as_it_is_measured_and_survives_a_stop(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "attainable_gflops,gatys")
    try:
        lines = []
        for line in proc.stderr:  # waits on the progress lines themselves, not on a time budget
            lines.append(line)
            if "attainable_gflops: done" in line:
                break
        # Before the stop: the first section is on disk, the second has started or is about to.
        written = json.loads((tmp_path / "results.json").read_text())
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert lines[0].startswith("[1/2] attainable_gflops: ")
    assert written["attainable_gflops"] > 0 and "gatys" not in written
    kept = json.loads((tmp_path / "results.json").read_text())
    assert kept["attainable_gflops"] == written["attainable_gflops"]
    assert "GFLOP/s" in (tmp_path / "results.md").read_text()


@pytest.mark.slow  # the benchmark in a subprocess
def test_a_subset_of_sections_runs_alone_and_renders_only_its_tables(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "attainable_gflops")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "[1/1] attainable_gflops: done" in err
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"machine", "date", "attainable_gflops"}
    markdown = (tmp_path / "results.md").read_text()
    assert "GFLOP/s" in markdown and "| Gatys |" not in markdown and "| target |" not in markdown
    assert not (tmp_path / "chart.png").exists()  # the chart needs compute and serving


def test_targets_skip_sections_not_measured() -> None:
    assert report.targets({"memory": {"4096x4096": {"peak_rss_bytes": 5e9, "seconds": 1.0}}}) == [
        ("16 MP peak RSS <= 6 GB", "5.00 GB", True)]


def test_the_magenta_table_puts_adain_beside_magenta_when_the_run_measured_it() -> None:
    rows = [{"size": 256, "style": "cached", "seconds": 0.14, "adain_seconds": 0.137},
            {"size": 512, "style": "inline", "seconds": 0.9, "adain_seconds": None}]
    lines = report.magenta_table(rows)
    assert lines[2] == "| 256 px | cached | 0.140 | 0.137 |"
    assert lines[3] == "| 512 px | inline | 0.900 | not measured |"
