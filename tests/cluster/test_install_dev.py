"""values-dev.yaml where pods run: probes, `helm test`, the API, traces, run-time security.

One release for the module, installed with values-dev.yaml exactly as a user would, then used the
way a user would: through the commands NOTES.txt prints, `kubectl port-forward` and `kubectl exec`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from kubernetes import client

from .conftest import (
    WAIT,
    Cluster,
    Helm,
    _bin,
    api_pods,
    kubectl,
    pod_ready,
    port_forward,
    release_objects,
    wait_until,
)

RELEASE = "dev"


@dataclass(frozen=True)
class Dev:
    namespace: str
    notes: str


@pytest.fixture(scope="module")
def installed(helm: Helm, restricted_namespace: Callable[[str], str]) -> Dev:
    namespace = restricted_namespace("dev")
    result = helm.install(RELEASE, namespace, "values-dev.yaml", extra=WAIT)
    assert result.returncode == 0, result.stderr
    notes = helm.ok("get", "notes", RELEASE, "--namespace", namespace).stdout
    return Dev(namespace=namespace, notes=notes)


def _notes_command(notes: str, pattern: str) -> str:
    found = [line.strip() for line in notes.splitlines() if re.search(pattern, line)]
    assert len(found) == 1, f"NOTES.txt has no single line matching {pattern!r}:\n{notes}"
    return found[0]


@pytest.fixture(scope="module")
def token(cluster: Cluster, installed: Dev) -> str:
    """The bearer token, read by running NOTES.txt's own TOKEN=... command in a shell."""
    command = _notes_command(installed.notes, r"^\s*TOKEN=\$\(kubectl ")
    env = {
        **os.environ,
        "KUBECONFIG": cluster.kubeconfig,
        "PATH": f"{os.path.dirname(_bin('kubectl'))}:{os.environ['PATH']}",
    }
    shell = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f'{command}\nprintf %s "$TOKEN"'],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout, "NOTES.txt's TOKEN command printed no token"
    return shell.stdout


@pytest.fixture(scope="module")
def api_url(cluster: Cluster, installed: Dev) -> Any:
    """The API through the port-forward NOTES.txt prints (its Service and port; any local port)."""
    command = _notes_command(installed.notes, r"^\s*kubectl .* port-forward svc/\S+ \d+:\d+$")
    found = re.search(r"port-forward (svc/\S+) (\d+):(\d+)", command)
    assert found, command
    with port_forward(cluster, installed.namespace, found[1], int(found[3])) as url:
        yield url


def test_every_dev_pod_is_running_and_ready_through_its_real_probes(
    api: client.ApiClient, installed: Dev
) -> None:
    pods = client.CoreV1Api(api).list_namespaced_pod(installed.namespace).items
    workloads = {p.metadata.labels.get("app.kubernetes.io/name") for p in pods}
    # The app, the OpenTelemetry Collector and Jaeger (both subcharts are on in dev).
    assert {"task-manager", "otel-collector", "jaeger"} <= workloads, workloads
    for pod in pods:
        assert pod_ready(pod), (pod.metadata.name, pod.status.phase, pod.status.conditions)
        statuses = pod.status.container_statuses
        for container, status in zip(pod.spec.containers, statuses, strict=True):
            assert container.readiness_probe is not None, (pod.metadata.name, container.name)
            assert status.ready, (pod.metadata.name, status)
            assert status.started, (pod.metadata.name, status)
            assert status.restart_count == 0, (pod.metadata.name, status.last_state)


def test_helm_test_passes_calling_the_api_through_its_service_name(
    helm: Helm, installed: Dev
) -> None:
    # The test pod resolves <release>-task-manager through cluster DNS and reaches it through
    # kube-proxy's Service rules, then calls /readyz and the API with the chart's token.
    namespace = installed.namespace
    result = helm.run("test", RELEASE, "--namespace", namespace, "--logs", "--timeout", "3m")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Phase:          Succeeded" in result.stdout, result.stdout
    assert "ok: /readyz and an authenticated GET /api/v1/tasks" in result.stdout, result.stdout


def test_a_task_is_created_read_updated_and_deleted_through_port_forward(
    api_url: str, token: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(
        f"{api_url}/api/v1/tasks",
        json={"title": "from the cluster", "labels": ["e2e"]},
        headers=auth,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    task = created.json()
    url = f"{api_url}/api/v1/tasks/{task['id']}"

    read = requests.get(url, headers=auth, timeout=10)
    assert read.status_code == 200, read.text
    assert read.json()["title"] == "from the cluster", read.text
    updated = requests.patch(
        url,
        json={"status": "done"},
        headers={
            **auth,
            "If-Match": read.headers["ETag"],
            "Content-Type": "application/merge-patch+json",
        },
        timeout=10,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"] == "done", updated.text
    deleted = requests.delete(url, headers=auth, timeout=10)
    assert deleted.status_code == 204, deleted.text
    assert requests.get(url, headers=auth, timeout=10).status_code == 404


def test_the_api_refuses_a_request_without_the_token(api_url: str) -> None:
    refused = requests.get(f"{api_url}/api/v1/tasks", timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith("application/problem+json")


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def _metric_total(metrics: str, name: str) -> float:
    pattern = re.compile(rf"^{name}(?:_total)?(?:{{[^}}]*}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(metrics))


def test_a_request_is_traced_through_the_collector_pod_into_jaeger(
    cluster: Cluster, installed: Dev, api_url: str, token: str
) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    listed = requests.get(
        f"{api_url}/api/v1/tasks",
        headers={"Authorization": f"Bearer {token}", "traceparent": traceparent},
        timeout=10,
    )
    assert listed.status_code == 200, listed.text

    # The app exports to the collector's Service; only the collector exports to Jaeger.
    with port_forward(cluster, installed.namespace, f"svc/{RELEASE}-jaeger", 16686) as jaeger:
        deadline = time.monotonic() + 90
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = requests.get(f"{jaeger}/api/traces/{trace_id}", timeout=10)
            if found.status_code == 200 and found.json().get("data"):
                spans = found.json()["data"][0]["spans"]
                if any({"db.system", "db.system.name"} & _tags(s).keys() for s in spans):
                    break
            time.sleep(2)
    server = [s for s in spans if _tags(s).get("span.kind") == "server"]
    assert len(server) == 1, spans
    assert _tags(server[0]).get("http.route") == "/api/v1/tasks", _tags(server[0])
    sql = [s for s in spans if {"db.system", "db.system.name"} & _tags(s).keys()]
    assert sql, f"no SQL span in trace {trace_id}: {[s['operationName'] for s in spans]}"

    with port_forward(
        cluster, installed.namespace, f"svc/{RELEASE}-otel-collector", 8888
    ) as collector:
        metrics = requests.get(f"{collector}/metrics", timeout=10).text
    assert _metric_total(metrics, "otelcol_receiver_accepted_spans") > 0, metrics[:2000]
    assert _metric_total(metrics, "otelcol_exporter_sent_spans") > 0, metrics[:2000]


PROBE = r"""
import json, os, pathlib
try:
    pathlib.Path("/written-by-the-test").write_text("x")
    root_write = "succeeded"
except OSError as e:
    root_write = e.strerror
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "root_write": root_write,
                  **{k: status[k].strip() for k in ("CapEff", "CapPrm", "NoNewPrivs", "Seccomp")}}))
"""


def test_the_api_container_runs_restricted_at_run_time(
    cluster: Cluster, api: client.ApiClient, installed: Dev
) -> None:
    pod = api_pods(api, installed.namespace, RELEASE)[0]
    result = kubectl(
        cluster,
        "-n",
        installed.namespace,
        "exec",
        pod.metadata.name,
        "-c",
        "task-manager",
        "--",
        "python3",
        "-c",
        PROBE,
    )
    seen = json.loads(result.stdout)
    assert seen["root_write"] == "Read-only file system", seen
    assert (seen["uid"], seen["gid"]) == (10001, 10001), seen
    assert int(seen["CapEff"], 16) == 0, seen
    assert int(seen["CapPrm"], 16) == 0, seen
    assert seen["NoNewPrivs"] == "1", seen
    assert seen["Seccomp"] == "2", seen  # filter mode: the RuntimeDefault profile is loaded


def test_dev_uninstall_leaves_nothing_of_the_release(
    helm: Helm, api: client.ApiClient, installed: Dev
) -> None:
    assert release_objects(api, installed.namespace, RELEASE)
    helm.ok("uninstall", RELEASE, "--namespace", installed.namespace, "--wait", "--timeout", "2m")
    wait_until(
        "the release's objects to be gone",
        lambda: not release_objects(api, installed.namespace, RELEASE),
        detail=lambda: release_objects(api, installed.namespace, RELEASE),
    )
