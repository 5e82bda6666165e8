"""docker-compose.yml wires the server, Prometheus and Grafana to files and ports that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from server.config import Config, load_config, settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_mounted_file_or_folder_exists() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and not source.startswith("./weights"):  # weights come from `make weights`
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_the_server_service_on_its_metrics_port() -> None:
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"styletransfer:{Config().metrics_port}"]
    assert "styletransfer" in COMPOSE["services"]
    rules = ROOT / "deploy" / "prometheus" / scrape["rule_files"][0]
    assert rules.is_file()


def test_server_environment_names_real_settings() -> None:
    fields = {s.env for s in settings()}
    assert set(COMPOSE["services"]["styletransfer"]["environment"]) <= fields


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert source["type"] == "prometheus" and source["url"].startswith("http://prometheus:")
    provider = yaml.safe_load((provisioning / "dashboards" / "styletransfer.yml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in COMPOSE["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/styletransfer.json"].startswith(provider["options"]["path"])


def test_server_ports_are_published_and_exposed() -> None:
    """The gRPC and HTTP ports the server listens on (the image's environment, then compose's) are the ones compose
    publishes and the Dockerfile exposes; the HTTP gateway is off unless STYLETRANSFER_HTTP_PORT is set."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    environ = dict(re.findall(r"\b(STYLETRANSFER_\w+)=(\S+)", dockerfile))
    literal = {k: v for k, v in COMPOSE["services"]["styletransfer"]["environment"].items() if "${" not in str(v)}
    config = load_config([], {**environ, **literal})
    assert config.http_port != 0, "the HTTP gateway is not enabled"
    published = {int(mapping.split(":")[-1]) for mapping in COMPOSE["services"]["styletransfer"]["ports"]}
    (exposed,) = re.findall(r"^EXPOSE (.+)$", dockerfile, re.MULTILINE)
    for port in (config.port, config.http_port):
        assert port in published
        assert str(port) in exposed.split()
