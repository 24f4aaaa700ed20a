"""The chart <-> service contract: every variable the chart sets is one the service reads, and
every port and path the chart probes or scrapes is one the service serves."""

from __future__ import annotations

import pytest
from task_manager.settings import known_environment_variables

from .conftest import Manifest, Render, find, one

# What the service serves (TEAM.md contract): the API port with its health endpoints, and the
# Prometheus metrics on a separate port.
HTTP_PORT = 8080
HTTP_PATHS = {"/livez", "/readyz"}
METRICS_PORT = 9464
METRICS_PATH = "/metrics"

SCENARIOS = [
    (),
    ("values-dev.yaml",),
    ("values-prod.yaml",),
    ("tests/chart/values/postgresql.yaml",),
    ("tests/chart/values/everything.yaml",),
    ("tests/chart/values/minimal.yaml",),
    ("tests/chart/values/persistence.yaml",),
]
IDS = ["default", "dev", "prod", "postgresql", "everything", "minimal", "persistence"]


def _env_names(container: dict, manifests: list[Manifest]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"unexpected envFrom source {source}"
        names |= set(one(manifests, "ConfigMap", ref["name"])["data"])
    return names


def _app_containers(manifests: list[Manifest]) -> list[tuple[str, dict]]:
    """Containers running the task-manager image, in the Deployment and the migration Job."""
    out = []
    for kind in ("Deployment", "Job"):
        for m in find(manifests, kind):
            if m["metadata"]["labels"].get("app.kubernetes.io/name") != "task-manager":
                continue
            for c in m["spec"]["template"]["spec"]["containers"]:
                out.append((f"{kind}/{m['metadata']['name']}/{c['name']}", c))
    return out


@pytest.mark.parametrize("values", SCENARIOS, ids=IDS)
def test_every_env_var_the_chart_sets_is_one_the_service_reads(render: Render, values) -> None:
    manifests = render(*values)
    known = known_environment_variables()
    containers = _app_containers(manifests)
    assert any(name.startswith("Deployment/") for name, _ in containers)
    for name, container in containers:
        unknown = _env_names(container, manifests) - known
        assert not unknown, f"{name} sets variables the service does not read: {sorted(unknown)}"


@pytest.mark.parametrize("values", SCENARIOS, ids=IDS)
def test_probes_hit_paths_the_service_serves_on_its_http_port(render: Render, values) -> None:
    manifests = render(*values)
    deployment = one(manifests, "Deployment", "tm-task-manager")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": HTTP_PORT, "metrics": METRICS_PORT}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in HTTP_PATHS, f"{probe} probes {get['path']}"
        assert ports[get["port"]] == HTTP_PORT, f"{probe} probes port {get['port']}"
    env = one(manifests, "ConfigMap", "tm-task-manager")["data"]
    assert int(env["TASK_MANAGER_PORT"]) == HTTP_PORT
    assert int(env["TASK_MANAGER_METRICS_PORT"]) == METRICS_PORT


def test_servicemonitor_scrapes_the_metrics_port_and_path_the_service_serves(
    render: Render,
) -> None:
    manifests = render("values-prod.yaml")
    monitor = one(manifests, "ServiceMonitor", "tm-task-manager")
    service = one(manifests, "Service", "tm-task-manager")
    deployment = one(manifests, "Deployment", "tm-task-manager")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == METRICS_PATH
    service_port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    target = next(p for p in container["ports"] if p["name"] == service_port["targetPort"])
    assert target["containerPort"] == METRICS_PORT
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_the_chart_sets_no_variable_the_service_would_ignore_for_tracing(render: Render) -> None:
    env = one(render("values-dev.yaml"), "ConfigMap", "tm-task-manager")["data"]
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tm-otel-collector:4318"
    assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == 1.0
