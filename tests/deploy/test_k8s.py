"""Offline checks of the Kubernetes manifests in deploy/k8s.

Schema validation (kubernetes-validate ships the OpenAPI schemas, so no cluster is needed) catches typos and wrong
types; the other tests catch mistakes the schema accepts but that break a rollout: a probe on a port the container
does not open, a Service that selects no pod, an HPA aimed at a missing Deployment, an env var the server ignores.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from server.config import ENV_PREFIX, Config, load_config, settings

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATION = "kustomization.yaml"
# Pinned so a new kubernetes-validate release cannot silently change what "valid" means; must be a shipped schema
# (validate() otherwise falls back to an older one without saying so).
KUBERNETES_VERSION = "1.37.0"
MODEL_LOAD_BUDGET_SECONDS = 240  # startup probes must allow a few minutes of model loading from a slow volume

Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    return sorted(K8S_DIR.glob("*.yaml"))


def load_docs(path: Path) -> list[Doc]:
    """All non-empty documents of a file (a leading comment block before `---` yields an empty one)."""
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def resources() -> list[tuple[str, Doc]]:
    """(file name, document) of every Kubernetes object; the kustomization is build input, not an object."""
    return [(path.name, doc) for path in manifest_files() if path.name != KUSTOMIZATION for doc in load_docs(path)]


def of_kind(kind: str) -> list[Doc]:
    return [doc for _, doc in resources() if doc["kind"] == kind]


def by_name(kind: str, name: str) -> Doc:
    matches = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name!r}, found {len(matches)}"
    return matches[0]


def pod_specs() -> list[tuple[str, Doc]]:
    """(Deployment name, pod spec) of every Deployment."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in of_kind("Deployment")]


def containers() -> Iterator[tuple[str, Doc, Doc]]:
    """(label, container, pod spec) of every container and init container."""
    for name, spec in pod_specs():
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{name}/{container['name']}", container, spec


def env_vars() -> Iterator[tuple[str, Doc]]:
    for label, container, _ in containers():
        for var in container.get("env", []):
            yield label, var


def resource_id(item: tuple[str, Doc]) -> str:
    path, doc = item
    return f"{path}:{doc['kind']}/{doc['metadata']['name']}"


# --- schema ---


def test_pinned_version_is_shipped() -> None:
    assert KUBERNETES_VERSION in all_versions()


def test_manifests_exist() -> None:
    """The parametrized tests below pass vacuously on an empty directory; this one does not."""
    kinds = {doc["kind"] for _, doc in resources()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PersistentVolumeClaim"} <= kinds


@pytest.mark.parametrize("item", resources(), ids=resource_id)
def test_manifest_matches_schema(item: tuple[str, Doc]) -> None:
    """Strict mode also rejects unknown fields, which the API server would drop or refuse."""
    _, doc = item
    validated = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert validated == KUBERNETES_VERSION.rsplit(".", 1)[0]  # the pinned schema, not a fallback


@pytest.mark.parametrize(("field", "value"), [("replica", 2), ("replicas", "two")])
def test_validator_rejects_broken_deployment(field: str, value: Any) -> None:
    """Proves the schema check can fail: an unknown field and a wrongly typed one."""
    broken = copy.deepcopy(by_name("Deployment", "styletransfer"))
    broken["spec"][field] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    """A manifest missing from kustomization.yaml is silently not deployed by `kubectl apply -k`."""
    (kustomization,) = load_docs(K8S_DIR / KUSTOMIZATION)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    others = {path.name for path in manifest_files()} - {KUSTOMIZATION}
    assert sorted(kustomization["resources"]) == sorted(others)


# --- pods ---


def test_deployment_selectors_match_pod_labels() -> None:
    """The API server refuses a Deployment whose selector misses its own pods; the schema does not."""
    for deployment in of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_containers_have_requests_and_limits() -> None:
    """Without requests the scheduler packs model-sized pods onto one node; without limits one pod can starve it."""
    for label, container, _ in containers():
        resources_ = container.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources_.get(section, {}).keys(), f"{label}: {section}"


def test_containers_are_hardened() -> None:
    """The image runs as uid 10001 and writes only to /data and /tmp, so nothing more should be allowed."""
    for label, container, spec in containers():
        context = container.get("securityContext", {})
        pod_context = spec.get("securityContext", {})
        assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, label
        assert context.get("readOnlyRootFilesystem") is True, label
        assert context.get("allowPrivilegeEscalation") is False, label
        assert context.get("capabilities", {}).get("drop") == ["ALL"], label


def test_volume_mounts_name_volumes() -> None:
    """A mount of an undeclared volume passes the schema but is refused by the API server."""
    for label, container, spec in containers():
        volumes = {volume["name"] for volume in spec.get("volumes", [])}
        mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
        assert mounts <= volumes, label


def test_tmp_is_writable() -> None:
    """With a read-only root filesystem, torch and tempfile need /tmp from a volume."""
    for label, container, _ in containers():
        assert "/tmp" in {mount["mountPath"] for mount in container.get("volumeMounts", [])}, label


def test_deployments_have_grpc_probes_on_an_exposed_port() -> None:
    """Native gRPC probes hit grpc.health.v1.Health; a wrong port would fail every probe and restart-loop the pod."""
    for label, container, _ in containers():
        ports = {port["containerPort"] for port in container.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["grpc"]["port"] in ports, f"{label}: {probe}"


def test_readiness_checks_the_styletransfer_service() -> None:
    for label, container, _ in containers():
        assert container["readinessProbe"]["grpc"].get("service") == "styletransfer.v1.StyleTransfer", label


def test_startup_probe_allows_model_loading() -> None:
    """Liveness starts only after the startup probe passes, so loading the weights must fit in its budget."""
    for label, container, _ in containers():
        probe = container["startupProbe"]
        budget = probe.get("failureThreshold", 3) * probe.get("periodSeconds", 10)
        assert budget >= MODEL_LOAD_BUDGET_SECONDS, label


def test_termination_grace_exceeds_server_grace() -> None:
    """SIGKILL must not come before the server's own grace period (plus any preStop sleep) has run out."""
    server_grace = Config().grace_period
    for label, container, spec in containers():
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert spec.get("terminationGracePeriodSeconds", 30) > server_grace + pre_stop, label


# --- wiring between objects ---


def test_services_select_deployment_pods() -> None:
    """A Service selecting no pod has no endpoints; clients then get connection refused or empty DNS."""
    templates = [d["spec"]["template"] for d in of_kind("Deployment")]
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matching = [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]
        assert matching, service["metadata"]["name"]
        port_names = {p["name"] for t in matching for c in t["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, service["metadata"]["name"]


def test_http_service_reaches_the_gateway() -> None:
    """The Service's ``http`` port must land on the port the HTTP/JSON gateway listens on; the gateway is off unless
    the container's env or args set --http-port (a misspelt variable is ignored, leaving it off and the port closed)."""
    ports = {p["name"]: p for p in by_name("Service", "styletransfer")["spec"]["ports"]}
    container = by_name("Deployment", "styletransfer")["spec"]["template"]["spec"]["containers"][0]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    environ = {var["name"]: var["value"] for var in container.get("env", []) if "value" in var}
    http_port = load_config(container.get("args", []), environ).http_port
    assert http_port != 0, "the HTTP gateway is not enabled"
    assert container_ports[ports["http"]["targetPort"]] == http_port


def test_headless_service_resolves_the_api_pods() -> None:
    """Client-side round_robin needs DNS to return pod IPs (clusterIP None) of the same pods as the Deployment."""
    headless = by_name("Service", "styletransfer-headless")
    assert headless["spec"]["clusterIP"] == "None"
    labels = by_name("Deployment", "styletransfer")["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= labels.items()
    assert headless["spec"]["selector"] == by_name("Service", "styletransfer")["spec"]["selector"]


def test_hpa_targets_an_existing_deployment() -> None:
    deployments = {d["metadata"]["name"] for d in of_kind("Deployment")}
    hpas = of_kind("HorizontalPodAutoscaler")
    assert hpas
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments


def test_claimed_pvcs_exist() -> None:
    """A pod claiming a missing PVC stays Pending forever."""
    claims = {pvc["metadata"]["name"] for pvc in of_kind("PersistentVolumeClaim")}
    for name, spec in pod_specs():
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, f"{name}: {volume['name']}"


def test_data_volume_is_shared() -> None:
    """Every replica reads registered styles and job results written by the others."""
    assert "ReadWriteMany" in by_name("PersistentVolumeClaim", "styletransfer-data")["spec"]["accessModes"]


def test_gpu_deployment_requests_a_gpu() -> None:
    container = by_name("Deployment", "styletransfer-gpu")["spec"]["template"]["spec"]["containers"][0]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert {"name": "STYLETRANSFER_DEVICE", "value": "cuda"} in container["env"]


# --- server configuration ---


def test_env_vars_name_config_fields() -> None:
    """The server ignores unknown STYLETRANSFER_* variables, so a typo would silently keep the default."""
    known = {s.env for s in settings()}  # the server's own settings and every model family's options
    used = [(label, var["name"]) for label, var in env_vars() if var["name"].startswith(ENV_PREFIX)]
    assert used
    for label, name in used:
        assert name in known, f"{label}: {name}"


def test_env_values_are_accepted_by_the_server() -> None:
    """Literal values must parse and validate (a wrong choice such as device "gpu" makes the server exit 2)."""
    for label, container, _ in containers():
        environ = {var["name"]: var["value"] for var in container.get("env", []) if "value" in var}
        assert environ, label
        load_config([], environ)  # raises ConfigError naming the bad setting
