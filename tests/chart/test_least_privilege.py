"""Least privilege on the rendered dev and prod manifests: with networkPolicy.enabled every pod the
chart runs is selected by a NetworkPolicy with both policy types, and secrets reach the API and the
migration Job as mounted files, never as environment values."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from task_manager.settings import SECRET_FILE_FIELDS, environment_variable

from .conftest import REPO_ROOT, Manifest, Render, find, one

# dev with the NetworkPolicy on (values-dev.yaml leaves it off); prod enables it itself.
RENDERS = {
    "dev": (("values-dev.yaml",), {"networkPolicy.enabled": "true"}),
    "prod": (("values-prod.yaml",), {}),
    "prod-direct-grpc": (
        ("values-prod.yaml",),
        {
            "tracing.protocol": "grpc",
            "tracing.endpoint": "https://otlp.example.com:4317",
            "tracing.headers.existingSecret": "otlp",
        },
    ),
}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# Secret variables and the *_FILE variable the chart sets instead.
SECRET_VARIABLES = {
    environment_variable(field): environment_variable(file_field)
    for field, file_field in SECRET_FILE_FIELDS.items()
} | {"TASK_MANAGER_AUTH_TOKENS": "TASK_MANAGER_AUTH_TOKENS_FILE"}


def _render(render: Render, name: str) -> list[Manifest]:
    files, values = RENDERS[name]
    return render(*files, set_values=values)


def _pods(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(kind/name, labels, pod spec) of every pod template and bare Pod (the `helm test` pod)."""
    pods = []
    for m in manifests:
        name = f"{m['kind']}/{m['metadata']['name']}"
        if m["kind"] in WORKLOADS:
            template = m["spec"]["template"]
            pods.append((name, template["metadata"]["labels"], template["spec"]))
        elif m["kind"] == "Pod":
            pods.append((name, m["metadata"]["labels"], m["spec"]))
    return pods


def _selects(policy: Manifest, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert not selector.get("matchExpressions"), "only matchLabels selectors are checked here"
    return selector.get("matchLabels", {}).items() <= labels.items()


@pytest.mark.parametrize("scenario", list(RENDERS))
def test_every_pod_is_selected_by_a_network_policy_with_ingress_and_egress(
    render: Render, scenario: str
) -> None:
    manifests = _render(render, scenario)
    pods = _pods(manifests)
    names = {name for name, _, _ in pods}
    assert {"Deployment/tm-task-manager", "Pod/tm-task-manager-test-api"} <= names
    assert any(n.startswith("Deployment/tm-otel-collector") for n in names)
    if scenario == "dev":
        assert "Deployment/tm-jaeger" in names
    else:
        assert "Job/tm-task-manager-migration" in names
    policies = find(manifests, "NetworkPolicy")
    for name, labels, _ in pods:
        covering = [p for p in policies if _selects(p, labels)]
        assert covering, f"{name} (labels {labels}) is selected by no NetworkPolicy"
        for policy in covering:
            assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, policy["metadata"]


@pytest.mark.parametrize("scenario", list(RENDERS))
def test_every_network_policy_allows_dns_and_selects_a_pod(render: Render, scenario: str) -> None:
    manifests = _render(render, scenario)
    labels = [pod_labels for _, pod_labels, _ in _pods(manifests)]
    dns = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    for policy in find(manifests, "NetworkPolicy"):
        name = policy["metadata"]["name"]
        assert any(_selects(policy, pod) for pod in labels), f"{name} selects no pod of the chart"
        assert any(rule.get("ports") == dns for rule in policy["spec"]["egress"]), name


def test_the_migration_policy_exists_before_the_migration_job(render: Render) -> None:
    manifests = _render(render, "prod")
    policy = one(manifests, "NetworkPolicy", "tm-task-manager-migration")
    job = one(manifests, "Job", "tm-task-manager-migration")
    for obj in (policy, job):
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    weight = int(policy["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])


@pytest.mark.parametrize(
    ("values", "port"),
    [
        ({}, 4318),
        ({"tracing.protocol": "grpc"}, 4317),
        ({"tracing.endpoint": "https://otlp.example.com"}, 443),
        ({"tracing.endpoint": "http://tempo.tracing:4318/"}, 4318),
        ({"tracing.endpoint": "http://tempo.tracing:4317", "tracing.protocol": "grpc"}, 4317),
    ],
)
def test_the_api_tracing_egress_port_follows_the_endpoint(
    render: Render, values: dict[str, str], port: int
) -> None:
    manifests = render("values-prod.yaml", set_values=values)
    policy = one(manifests, "NetworkPolicy", "tm-task-manager")
    ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]]
    assert port in ports
    assert set(ports) <= {53, 5432, port}


@pytest.mark.parametrize("scenario", list(RENDERS))
def test_no_secret_reaches_the_api_or_the_migration_as_an_environment_value(
    render: Render, scenario: str
) -> None:
    manifests = _render(render, scenario)
    config = {cm["metadata"]["name"]: cm.get("data", {}) for cm in find(manifests, "ConfigMap")}
    own = [
        (name, spec)
        for name, labels, spec in _pods(manifests)
        if labels.get("app.kubernetes.io/name") == "task-manager"
    ]
    assert own
    for name, spec in own:
        mounts = {
            m["mountPath"]: m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])
        }
        for container in spec["containers"]:
            env = {}
            for source in container.get("envFrom", []):
                assert "secretRef" not in source, name
                env |= config[source["configMapRef"]["name"]]
            for var in container.get("env", []):
                assert "secretKeyRef" not in var.get("valueFrom", {}), (name, var["name"])
                env[var["name"]] = var.get("value", "")
            for secret, file_variable in SECRET_VARIABLES.items():
                # A SQLite URL is a path on the pod's volume, not a credential; an empty value
                # clears the image's default where the URL comes from a file.
                value = env.get(secret, "")
                assert value == "" or value.startswith("sqlite:"), (name, secret)
                if file_variable in env:  # the file is on a read-only Secret volume
                    directory = env[file_variable].rsplit("/", 1)[0]
                    volume = next(v for v in spec["volumes"] if v["name"] == mounts[directory])
                    assert "secret" in volume, (name, file_variable)
    if scenario != "dev":
        api = config["tm-task-manager"]
        assert api["TASK_MANAGER_DATABASE_URL_FILE"] == "/etc/task-manager/database/database-url"
    if scenario == "prod-direct-grpc":
        assert api["OTEL_EXPORTER_OTLP_HEADERS_FILE"] == "/etc/task-manager/otlp-headers/headers"
        assert api["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


def test_no_pod_of_the_release_takes_a_secret_through_its_environment(render: Render) -> None:
    """The subcharts included: the collector's export headers (everything.yaml sets them, from
    the chart's Secret and a user's) are mounted files too."""
    manifests = render("tests/chart/values/everything.yaml")
    collector = one(manifests, "Deployment", "tm-otel-collector")["spec"]["template"]["spec"]
    assert any("projected" in v for v in collector["volumes"]), "no header files mounted"
    for name, _, spec in _pods(manifests):
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            for source in container.get("envFrom", []):
                assert "secretRef" not in source, (name, container["name"])
            for var in container.get("env", []):
                assert "secretKeyRef" not in var.get("valueFrom", {}), (name, var["name"])


def test_the_values_files_enable_what_these_tests_rely_on() -> None:
    prod = yaml.safe_load((REPO_ROOT / "values-prod.yaml").read_text())
    assert prod["networkPolicy"]["enabled"] is True
