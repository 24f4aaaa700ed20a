"""kube-prometheus-stack discovery and autoscaling, the way a user's cluster does them.

values-prod.yaml (labels `release: kube-prometheus-stack`) installed next to a real Prometheus
Operator whose Prometheus selects exactly that label in every namespace, and a real metrics-server
(tests/cluster/monitoring.py). The install changes only what makes the test quick: 10 s scrapes, a
15 s HPA scale-down window, a lower CPU request and target so a bounded load can cross it, and
patient probes so a frozen pod is seen by Prometheus rather than restarted first.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from support.dashboards import dashboard_variables, substitute

from .conftest import (
    NODE_CONTAINERD_SOCKET,
    REPO_ROOT,
    WAIT,
    Cluster,
    Helm,
    _bin,
    api_pods,
    kubectl,
    list_objects,
    load,
    wait_until,
)
from .monitoring import KPS_RELEASE, monitoring_stack, prometheus_api, query

RELEASE = "kps"
SECRET = "task-manager-secrets"
SCRAPE_SECONDS = 10
DASHBOARDS = sorted((REPO_ROOT / "grafana-dashboards").glob("*.json"))
# The panels an SRE opens first; each must show data, every other query must at least run.
MAIN_PANELS = {
    "Request rate",
    "Error ratio (5xx)",
    "Latency p99",
    "Tasks by status",
    "Spans received",
}
TEST_VALUES = {
    "metrics.serviceMonitor.interval": f"{SCRAPE_SECONDS}s",
    "metrics.serviceMonitor.scrapeTimeout": "5s",
    "otel-collector.serviceMonitor.interval": f"{SCRAPE_SECONDS}s",
    "otel-collector.serviceMonitor.scrapeTimeout": "5s",
    "autoscaling.scaleDownStabilizationSeconds": "15",
    "autoscaling.targetCPUUtilizationPercentage": "30",
    "resources.requests.cpu": "100m",
    "probes.liveness.failureThreshold": "30",
    "probes.readiness.failureThreshold": "30",
}


@pytest.fixture(scope="module")
def stack(cluster: Cluster) -> Iterator[None]:
    with monitoring_stack(cluster):
        yield


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, stack: None) -> Iterator[str]:
    with prometheus_api(cluster) as url:
        yield url


@pytest.fixture(scope="module")
def namespace(
    helm: Helm,
    api: client.ApiClient,
    stack: None,
    database_url: Callable[[], str],
    restricted_namespace: Callable[[str], str],
) -> str:
    namespace = restricted_namespace("kps")
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            data={
                "database-url": base64.b64encode(database_url().encode()).decode(),
                "tokens": base64.b64encode(b"ops:kps-token-0123456789abcdef\n").decode(),
            },
        ),
    )
    result = helm.install(
        RELEASE, namespace, "values-prod.yaml", set_values=TEST_VALUES, extra=WAIT
    )
    assert result.returncode == 0, result.stderr
    wait_until("3 API pods", lambda: len(api_pods(api, namespace, RELEASE)) == 3)
    return namespace


def _targets(prometheus: str) -> list[dict[str, Any]]:
    return list(query(prometheus, "/api/v1/targets", state="active")["activeTargets"])


def _up(prometheus: str, namespace: str, job: str) -> dict[str, str]:
    """pod -> health of the active targets of one job in the namespace."""
    return {
        t["labels"]["pod"]: t["health"]
        for t in _targets(prometheus)
        if t["labels"].get("namespace") == namespace and t["labels"].get("job") == job
    }


def test_the_operator_discovers_the_servicemonitors_and_every_pod_is_up(
    prometheus: str, api: client.ApiClient, namespace: str
) -> None:
    pods = {p.metadata.name for p in api_pods(api, namespace, RELEASE)}
    app_job, collector_job = f"{RELEASE}-task-manager", f"{RELEASE}-otel-collector"
    wait_until(
        "every API pod and both collector pods to be scraped and up",
        lambda: (
            _up(prometheus, namespace, app_job) == dict.fromkeys(pods, "up")
            and list(_up(prometheus, namespace, collector_job).values()) == ["up", "up"]
        ),
        timeout=240,
        detail=lambda: (
            _up(prometheus, namespace, app_job),
            _up(prometheus, namespace, collector_job),
        ),
    )
    pools = {
        t["scrapePool"] for t in _targets(prometheus) if t["labels"].get("namespace") == namespace
    }
    assert f"serviceMonitor/{namespace}/{RELEASE}-task-manager/0" in pools, pools


def test_the_chart_rule_groups_are_loaded_and_evaluate_without_error(
    prometheus: str, api: client.ApiClient, namespace: str
) -> None:
    rules = list_objects(api, namespace, "monitoring.coreos.com/v1", "prometheusrules")
    expected = {g["name"] for r in rules for g in r["spec"]["groups"]}
    assert expected, "the release has no PrometheusRule groups"

    def loaded() -> dict[str, list[dict[str, Any]]]:
        groups = query(prometheus, "/api/v1/rules")["groups"]
        return {g["name"]: g["rules"] for g in groups if f"/{namespace}-" in g["file"]}

    wait_until(
        "the chart's rule groups to be loaded and evaluated",
        lambda: (
            set(loaded()) == expected
            and all(
                r.get("lastEvaluation", "").startswith("20") for g in loaded().values() for r in g
            )
        ),
        timeout=180,
        detail=lambda: {name: len(rules) for name, rules in loaded().items()},
    )
    broken = [
        (r["name"], r.get("lastError"))
        for g in loaded().values()
        for r in g
        if r["health"] != "ok" or r.get("lastError")
    ]
    assert broken == [], broken


@pytest.fixture(scope="module")
def traffic(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    """A minute of ordinary traffic, so the panels have rates to show."""
    with load(cluster, api, namespace, RELEASE, SECRET, rate=10) as result:
        time.sleep(6 * SCRAPE_SECONDS)
    assert result.failed == 0, result.errors


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_runs_and_the_main_panels_show_data(
    prometheus: str, namespace: str, traffic: None, path: Path
) -> None:
    dashboard = json.loads(path.read_text())
    values = dashboard_variables(prometheus, dashboard, SCRAPE_SECONDS)
    assert values["namespace"] == namespace, values
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], values)
            assert "$" not in expr, f"unsubstituted variable in {expr}"
            result = query(prometheus, "/api/v1/query", query=expr)["result"]
            if panel["title"] in MAIN_PANELS and not result:
                empty.append(f"{panel['title']}: {expr}")
    assert empty == [], "main panels without data:\n" + "\n".join(empty)


def test_a_servicemonitor_without_the_release_label_is_not_selected(
    cluster: Cluster, api: client.ApiClient, prometheus: str, namespace: str
) -> None:
    (chart_monitor,) = [
        m
        for m in list_objects(api, namespace, "monitoring.coreos.com/v1", "servicemonitors")
        if m["metadata"]["name"] == f"{RELEASE}-task-manager"
    ]
    copies = {
        "unlabelled": {},
        "other-release": {"release": "other"},
        "selected": {"release": KPS_RELEASE},
    }
    manifests = [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": f"copy-{name}", "namespace": namespace, "labels": labels},
            "spec": chart_monitor["spec"],
        }
        for name, labels in copies.items()
    ]
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    try:

        def pools() -> set[str]:
            return {t["scrapePool"] for t in _targets(prometheus)}

        # The positive control shows the operator has reconciled all three copies.
        wait_until(
            "the labelled copy to be scraped",
            lambda: f"serviceMonitor/{namespace}/copy-selected/0" in pools(),
            timeout=180,
        )
        assert f"serviceMonitor/{namespace}/copy-unlabelled/0" not in pools()
        assert f"serviceMonitor/{namespace}/copy-other-release/0" not in pools()
    finally:
        kubectl(cluster, "delete", "-f", "-", stdin=yaml.safe_dump_all(manifests))


def _hpa(api: client.ApiClient, namespace: str) -> Any:
    return client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        f"{RELEASE}-task-manager", namespace
    )


def _cpu_utilisation(hpa: Any) -> int | None:
    for metric in hpa.status.current_metrics or []:
        if metric.type == "Resource" and metric.resource.name == "cpu":
            return metric.resource.current.average_utilization  # type: ignore[no-any-return]
    return None


def test_the_hpa_reads_real_utilisation_and_scales_up_under_load_then_back_down(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    wait_until(
        "the HPA to report CPU utilisation (not <unknown>)",
        lambda: _cpu_utilisation(_hpa(api, namespace)) is not None,
        timeout=180,
        detail=lambda: _hpa(api, namespace).status,
    )
    shown = kubectl(cluster, "-n", namespace, "get", "hpa", f"{RELEASE}-task-manager").stdout
    assert "<unknown>" not in shown, shown

    with load(cluster, api, namespace, RELEASE, SECRET, rate=80, max_seconds=300) as result:
        wait_until(
            "the HPA to scale the Deployment above 3 replicas",
            lambda: (_hpa(api, namespace).status.desired_replicas or 0) > 3,
            timeout=240,
            detail=lambda: (_cpu_utilisation(_hpa(api, namespace)), _hpa(api, namespace).status),
        )
        peak = _hpa(api, namespace).status.desired_replicas
    assert result.failed == 0, result.errors
    wait_until(
        "the HPA to scale back down to 3 after the load",
        lambda: _hpa(api, namespace).status.desired_replicas == 3,
        timeout=300,
        detail=lambda: (_cpu_utilisation(_hpa(api, namespace)), _hpa(api, namespace).status),
    )
    assert peak > 3


def _target_down_alerts(prometheus: str, pod: str) -> list[str]:
    alerts = query(prometheus, "/api/v1/alerts")["alerts"]
    return [
        a["state"]
        for a in alerts
        if a["labels"].get("alertname") == "TaskManagerTargetDown" and a["labels"].get("pod") == pod
    ]


def _freeze(cluster: Cluster, container_id: str, verb: str) -> None:
    """Pauses or resumes a container through containerd (its freezer cgroup), from outside the
    pod: a hung process, which a signal from inside cannot fake (PID 1 of a container ignores a
    SIGSTOP sent from its own namespace)."""
    if cluster.local:
        runtime = [_bin("ctr"), "--address", NODE_CONTAINERD_SOCKET]
    else:  # kind: the node is a container with its own ctr
        node = f"{os.environ.get('KIND_CLUSTER_NAME', 'kind')}-control-plane"
        runtime = ["docker", "exec", node, "ctr"]
    done = subprocess.run(
        [*runtime, "--namespace", "k8s.io", "tasks", verb, container_id],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_hung_pod_raises_target_down_which_resolves_when_it_recovers(
    cluster: Cluster, api: client.ApiClient, prometheus: str, namespace: str
) -> None:
    pod = api_pods(api, namespace, RELEASE)[0]
    name = pod.metadata.name
    container_id = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    assert _target_down_alerts(prometheus, name) == []
    _freeze(cluster, container_id, "pause")
    try:
        wait_until(
            "TaskManagerTargetDown for the hung pod to be pending or firing",
            lambda: bool({"pending", "firing"} & set(_target_down_alerts(prometheus, name))),
            timeout=120,
        )
    finally:
        _freeze(cluster, container_id, "resume")
    wait_until(
        "the alert to resolve once the pod answers again",
        lambda: _target_down_alerts(prometheus, name) == [],
        timeout=120,
    )
