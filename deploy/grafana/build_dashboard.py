"""Writes deploy/grafana/styletransfer.json, the Grafana dashboard, from the panel list below.

Run ``python deploy/grafana/build_dashboard.py`` after editing; a test checks the committed JSON matches this script
and that every metric a panel queries is one a live server exports.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("styletransfer.json")
DS = {"type": "prometheus", "uid": "${datasource}"}

# (title, unit, [(PromQL, legend)], kind)
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("Requests by code", "reqps", [("sum by (code) (rate(styletransfer_requests_total[5m]))", "{{code}}")],
     "timeseries"),
    # Successful calls only: instant RESOURCE_EXHAUSTED answers under overload would pull the quantiles down.
    ("Stylize latency", "s", [
        (f"histogram_quantile({q}, sum by (le) (rate(styletransfer_request_duration_seconds_bucket"
         f'{{method="Stylize",code="OK"}}[5m])))', f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], "timeseries"),
    ("Queue depth", "short", [("sum(styletransfer_queued_requests)", "queued"),
                              ("sum(styletransfer_inflight_requests)", "running"),
                              ("sum(styletransfer_queue_capacity)", "capacity")], "timeseries"),
    ("Queue wait p95", "s", [("histogram_quantile(0.95, sum by (le) (rate(styletransfer_queue_wait_seconds_bucket"
                              "[5m])))", "p95")], "timeseries"),
    ("Compute time p50 / p95", "s", [
        (f"histogram_quantile({q}, sum by (le, model) (rate(styletransfer_compute_seconds_bucket[5m])))",
         f"{{{{model}}}} p{int(q * 100)}") for q in (0.5, 0.95)], "timeseries"),
    ("Batch size (mean)", "short", [("sum(rate(styletransfer_batch_size_sum[5m])) / "
                                     "clamp_min(sum(rate(styletransfer_batch_size_count[5m])), 1e-9)", "mean")],
     "timeseries"),
    ("Style cache hit ratio", "percentunit", [
        ("sum by (cache) (rate(styletransfer_style_cache_hits_total[5m])) / clamp_min(sum by (cache) "
         "(rate(styletransfer_style_cache_hits_total[5m]) + rate(styletransfer_style_cache_misses_total[5m])), 1e-9)",
         "{{cache}}")], "timeseries"),
    ("Response cache", "percentunit", [
        ("sum(rate(styletransfer_response_cache_hits_total[5m])) / clamp_min(sum(rate("
         "styletransfer_response_cache_hits_total[5m]) + rate(styletransfer_response_cache_misses_total[5m])), 1e-9)",
         "hit ratio")], "timeseries"),
    ("Response cache size", "bytes", [("sum(styletransfer_response_cache_bytes)", "bytes held")], "timeseries"),
    ("Streams: frames per second", "short", [
        ("sum by (event) (rate(styletransfer_stream_frames_total[5m]))", "{{event}}"),
        ("sum(styletransfer_streams_active)", "open streams")], "timeseries"),
    ("Stream frame latency", "s", [
        (f"histogram_quantile({q}, sum by (le) (rate(styletransfer_stream_frame_latency_seconds_bucket[5m])))",
         f"p{int(q * 100)}") for q in (0.5, 0.95)], "timeseries"),
    ("Jobs by state", "short", [("sum by (kind, state) (styletransfer_jobs_current)", "{{kind}} {{state}}")],
     "timeseries"),
    ("Job queue", "short", [("sum(styletransfer_job_queue_length)", "queued jobs")], "timeseries"),
    ("Training loss", "short", [('styletransfer_job_loss{kind="TRAIN"}', "{{job_id}} {{term}}")], "timeseries"),
    ("Training speed", "short", [("styletransfer_train_steps_per_second", "{{job_id}} steps/s")], "timeseries"),
    ("Process memory", "bytes", [("process_resident_memory_bytes", "{{instance}}")], "timeseries"),
    ("Untrained weights served", "short", [('max(styletransfer_model_info{untrained="true"}) or vector(0)',
                                            "untrained")], "stat"),
    ("Models served by family", "short", [("count by (family) (styletransfer_model_info)", "{{family}}")], "stat"),
]


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], kind: str) -> dict:
    return {
        "id": index + 1, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard() -> dict:
    return {
        "title": "styletransfer", "uid": "styletransfer", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "tags": ["styletransfer"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
