"""deploy/prometheus and deploy/grafana: promtool accepts them, and they only query series a live server exports.

promtool comes from Debian's ``prometheus`` package (Homebrew's on macOS), which ``make system-deps`` installs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.grafana import build_dashboard

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "styletransfer.json"
# Series that are not the server's own: Prometheus built-ins and PromQL functions that look like names.
NOT_EXPORTED = {"up"}
# Labels a query may use that the server does not put on its series: Prometheus' target labels, histogram buckets.
NOT_FROM_SERVER = {"instance", "job", "le"}
# The series each ``# TYPE`` family puts on the wire, by suffix (prometheus_client names counter families with
# their ``_total`` already, and declares ``_created`` as gauges of their own).
SUFFIXES = {"counter": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}


def promtool(*args: str) -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make system-deps` installs it"
    done = subprocess.run([exe, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def exported_series(metrics_text: str) -> set[str]:
    """Every series name the scrape can carry, from its ``# TYPE`` lines (labelled metrics with no samples yet
    are declared too, so a panel for jobs or training is checked without running one)."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            names.update(family + suffix for suffix in SUFFIXES[kind])
    return names


def queried_series(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers followed by ``{``, ``[`` or ending a call's argument."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    names = set(re.findall(r"\b((?:styletransfer|process)_[a-z0-9_]+)\b", without_strings))
    return names - NOT_EXPORTED


def carried_labels(metrics_text: str) -> dict[str, set[str]]:
    """The label names of each series that has samples in the scrape (labelled series with none yet are absent)."""
    labels: dict[str, set[str]] = {}
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            labels.setdefault(name.split()[0], set()).update(re.findall(r'(\w+)="(?:[^"\\]|\\.)*"', rest))
    return labels


def queried_labels(expr: str, legend: str = "") -> set[str]:
    """Label names an expression matches or groups on, and those its legend prints (``{{family}}``)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    matched = {name for block in re.findall(r"\{([^}]*)\}", without_strings)
               for name in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", block)}
    grouped = {name.strip() for block in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", without_strings)
               for name in block.split(",") if name.strip()}
    return matched | grouped | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))


def rule_expressions() -> list[str]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def recorded_names() -> set[str]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def dashboard_targets() -> list[tuple[str, str]]:
    """(expression, legend) of every panel target."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(target["expr"], target["legendFormat"]) for panel in panels for target in panel["targets"]]


def dashboard_expressions() -> list[str]:
    return [expr for expr, _ in dashboard_targets()]


def test_promtool_accepts_the_scrape_config_and_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    assert re.search(r"SUCCESS: \d+ rules found", promtool("check", "rules", "rules.yml"))


def test_alert_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "rules_test.yml")


def test_promtool_would_catch_a_broken_alert(tmp_path: Path) -> None:
    """The unit tests can fail: an alert with a stricter threshold no longer fires where they expect it."""
    rules = (PROMETHEUS / "rules.yml").read_text().replace("styletransfer:queue:saturation > 0.8",
                                                          "styletransfer:queue:saturation > 0.99")
    (tmp_path / "rules.yml").write_text(rules)
    shutil.copy(PROMETHEUS / "rules_test.yml", tmp_path / "rules_test.yml")
    done = subprocess.run([shutil.which("promtool") or "promtool", "test", "rules", "rules_test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "StyletransferQueueSaturated" in done.stdout + done.stderr


def test_committed_dashboard_is_what_the_builder_writes() -> None:
    assert DASHBOARD.read_text() == build_dashboard.render(), "run: python deploy/grafana/build_dashboard.py"


def test_rules_and_dashboard_query_only_series_the_server_exports(server) -> None:
    exported = exported_series(server.metrics())
    assert "styletransfer_requests_total" in exported and "process_resident_memory_bytes" in exported
    recorded = recorded_names()
    for expr in rule_expressions():
        assert queried_series(expr) <= exported, expr
    for expr in dashboard_expressions():
        missing = queried_series(expr) - exported
        assert not missing, f"{expr} queries {missing}"
    assert all(name.startswith("styletransfer:") for name in recorded)  # recording rules never shadow raw series


def test_rules_and_dashboard_use_only_labels_the_server_exports(server) -> None:
    """A grouping or legend label the series lacks gives one unlabelled line (or none) instead of an error."""
    carried = carried_labels(server.metrics())
    assert {"model", "family", "version"} <= carried["styletransfer_model_info"]
    checked = 0
    for expr, legend in dashboard_targets() + [(expr, "") for expr in rule_expressions()]:
        sampled = [carried[name] for name in queried_series(expr) if name in carried]
        if sampled:  # series with no sample yet (jobs, training) are checked by name above
            missing = queried_labels(expr, legend) - NOT_FROM_SERVER - set().union(*sampled)
            assert not missing, f"{expr} ({legend}) uses labels {missing} the series do not carry"
            checked += 1
    assert checked >= 5
    assert queried_labels("count by (famly) (styletransfer_model_info)") - carried["styletransfer_model_info"] == {
        "famly"}


def test_latency_objectives_read_successful_calls_only() -> None:
    """Instant rejections under overload (RESOURCE_EXHAUSTED) must not pull latency quantiles toward zero."""
    latency = [e for e in rule_expressions() + dashboard_expressions() if "request_duration_seconds_bucket" in e]
    assert latency
    for expr in latency:
        assert re.search(r'styletransfer_request_duration_seconds_bucket\{[^}]*code="OK"', expr), expr


def test_the_check_notices_an_unknown_metric(server) -> None:
    exported = exported_series(server.metrics())
    assert queried_series('rate(styletransfer_requestz_total{code="OK"}[5m])') - exported == {
        "styletransfer_requestz_total"}


@pytest.mark.parametrize("panel", ["Requests by code", "Stylize latency", "Queue depth", "Queue wait p95",
                                   "Compute time p50 / p95", "Batch size (mean)", "Style cache hit ratio",
                                   "Response cache", "Jobs by state", "Training loss", "Process memory",
                                   "Streams: frames per second", "Stream frame latency"])
def test_dashboard_has_the_panels_operators_need(panel: str) -> None:
    assert panel in {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
