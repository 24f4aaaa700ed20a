"""The monitoring half of kube-prometheus-stack, test-only: metrics-server and the Prometheus
Operator with a Prometheus selecting `release: kube-prometheus-stack` (tests/cluster/monitoring/).

On the local cluster the images are the ones ci/node-images.sh built from the pinned Go modules; on
any other cluster (the GitHub kind job) the upstream images of the same versions.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from .conftest import REPO_ROOT, Cluster, kubectl, port_forward

MANIFESTS = Path(__file__).with_name("monitoring")
KPS_RELEASE = "kube-prometheus-stack"
NAMESPACE = "monitoring"


def _versions() -> dict[str, str]:
    text = (REPO_ROOT / "ci" / "versions.env").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.M))


def prometheus_release(module_version: str) -> str:
    """v0.316.0 (the Go module) -> v3.16.0 (the Prometheus release)."""
    major_minor, patch = module_version.removeprefix("v0.").split(".")
    return f"v{major_minor[0]}.{int(major_minor[1:])}.{patch}"


def manifest_values(cluster: Cluster) -> dict[str, str]:
    """The images (and the kubelet TLS flag) the manifests are rendered with."""
    v = _versions()
    operator, metrics = f"v{v['PROMETHEUS_OPERATOR_VERSION']}", f"v{v['METRICS_SERVER_VERSION']}"
    prometheus = prometheus_release(v["PROMETHEUS_VERSION"])
    local = "localhost/task-manager-node"
    if cluster.local:
        refs = {
            "IMAGE": f"{local}/metrics-server:{metrics}",
            "OPERATOR_IMAGE": f"{local}/prometheus-operator:{operator}",
            "RELOADER_IMAGE": f"{local}/prometheus-config-reloader:{operator}",
            "PROMETHEUS_IMAGE": f"{local}/prometheus:{prometheus}",
            "KUBELET_TLS": "--kubelet-certificate-authority=/ca/ca.crt",
        }
    else:
        refs = {
            "IMAGE": f"registry.k8s.io/metrics-server/metrics-server:{metrics}",
            "OPERATOR_IMAGE": f"quay.io/prometheus-operator/prometheus-operator:{operator}",
            "RELOADER_IMAGE": f"quay.io/prometheus-operator/prometheus-config-reloader:{operator}",
            "PROMETHEUS_IMAGE": f"quay.io/prometheus/prometheus:{prometheus}",
            "KUBELET_TLS": "--kubelet-insecure-tls",
        }
    return {**refs, "PROMETHEUS_VERSION": prometheus}


def _rendered(cluster: Cluster, name: str) -> str:
    return string.Template((MANIFESTS / name).read_text()).substitute(manifest_values(cluster))


@contextmanager
def monitoring_stack(cluster: Cluster) -> Iterator[None]:
    """metrics-server and the operator's Prometheus, ready; removed again afterwards (the
    APIService first, so no discovery ever meets an absent metrics.k8s.io)."""
    metrics_server = _rendered(cluster, "metrics-server.yaml")
    operator = _rendered(cluster, "prometheus-operator.yaml")
    try:
        kubectl(cluster, "apply", "-f", "-", stdin=metrics_server)
        kubectl(cluster, "apply", "-f", "-", stdin=operator)
        kubectl(cluster, "-n", "kube-system", "rollout", "status", "deployment/metrics-server",
                "--timeout=180s", timeout=200)  # fmt: skip
        kubectl(cluster, "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io",
                "--timeout=120s", timeout=150)  # fmt: skip
        kubectl(cluster, "-n", NAMESPACE, "rollout", "status", "deployment/prometheus-operator",
                "--timeout=180s", timeout=200)  # fmt: skip
        deadline = time.monotonic() + 240
        while True:  # the operator creates the StatefulSet, then its pod starts
            ready = kubectl(
                cluster, "-n", NAMESPACE, "get", "statefulset",
                f"prometheus-{KPS_RELEASE}-prometheus", "-o", "jsonpath={.status.readyReplicas}",
                check=False,
            )  # fmt: skip
            if ready.stdout.strip() == "1":
                break
            assert time.monotonic() < deadline, f"Prometheus not ready: {ready.stderr}"
            time.sleep(3)
        yield
    finally:
        kubectl(cluster, "delete", "apiservice", "v1beta1.metrics.k8s.io", "--ignore-not-found",
                check=False)  # fmt: skip
        for manifest in (operator, metrics_server):
            kubectl(cluster, "delete", "--ignore-not-found", "--wait=true", "-f", "-",
                    stdin=manifest, timeout=300, check=False)  # fmt: skip


@contextmanager
def prometheus_api(cluster: Cluster) -> Iterator[str]:
    """The operator's Prometheus through `kubectl port-forward svc/prometheus-operated`."""
    with port_forward(cluster, NAMESPACE, "svc/prometheus-operated", 9090) as url:
        yield url


def query(prometheus: str, path: str, **params: str) -> Any:
    response = requests.get(f"{prometheus}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]
