"""Installs that must fail do fail, with the chart's message, and leave no release behind."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from .conftest import Cluster, Helm, _bin, apply_crds, crds_present, release_objects, wait_until

RELEASE = "bad"


@pytest.fixture(scope="module")
def namespace(restricted_namespace: Callable[[str], str]) -> str:
    return restricted_namespace("guard-rails")


def _assert_rejected(helm: Helm, api: client.ApiClient, namespace: str, result: object) -> None:
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode != 0, result.stdout
    assert not release_objects(api, namespace, RELEASE)
    status = helm.run("status", RELEASE, "--namespace", namespace)
    assert status.returncode != 0, status.stdout
    assert "not found" in status.stderr, status.stderr


@pytest.mark.parametrize(
    ("set_values", "message"),
    [
        pytest.param(
            {"replicaCount": "2"},
            "database.type=sqlite supports exactly one pod, but replicaCount=2",
            id="sqlite-with-replicas",
        ),
        pytest.param(
            {"autoscaling.enabled": "true"},
            "database.type=sqlite cannot be autoscaled",
            id="sqlite-with-hpa",
        ),
        pytest.param(
            {"database.type": "postgresql"},
            "database.type=postgresql needs a database URL",
            id="postgresql-without-url",
        ),
    ],
)
def test_guard_rail_fails_the_install_with_its_message(
    helm: Helm,
    api: client.ApiClient,
    namespace: str,
    set_values: dict[str, str],
    message: str,
) -> None:
    result = helm.install(RELEASE, namespace, set_values=set_values, extra=["--wait"])
    assert message in result.stderr, result.stderr
    _assert_rejected(helm, api, namespace, result)


def test_a_values_typo_is_rejected_by_the_schema(
    helm: Helm, api: client.ApiClient, namespace: str
) -> None:
    result = helm.install(RELEASE, namespace, set_values={"config.loglevel": "INFO"})
    assert "schema" in result.stderr.lower(), result.stderr
    assert "loglevel" in result.stderr, result.stderr
    _assert_rejected(helm, api, namespace, result)


@pytest.fixture
def without_monitoring_crds(api: client.ApiClient, cluster: Cluster) -> Iterator[None]:
    """Removes every monitoring.coreos.com CRD for one test, then installs them again."""
    kubectl = [_bin("kubectl"), "--kubeconfig", cluster.kubeconfig]
    names = crds_present(api, "monitoring.coreos.com")
    assert names, "the Prometheus Operator CRDs should be installed (ci/crds.sh)"
    try:
        subprocess.run(
            [*kubectl, "delete", "crd", *names, "--wait=true", "--timeout=120s"],
            check=True,
            capture_output=True,
            timeout=180,
        )
        wait_until(
            "the monitoring.coreos.com API to leave discovery",
            lambda: (
                "monitoring.coreos.com/v1"
                not in subprocess.run(
                    [*kubectl, "api-versions"], capture_output=True, text=True, check=True
                ).stdout.split()
            ),
        )
        yield
    finally:
        apply_crds(cluster.kubeconfig)


def test_servicemonitor_on_a_cluster_without_the_crd_fails_clearly(
    helm: Helm, api: client.ApiClient, namespace: str, without_monitoring_crds: None
) -> None:
    result = helm.install(
        RELEASE, namespace, set_values={"metrics.serviceMonitor.enabled": "true"}, extra=["--wait"]
    )
    message = (
        "metrics.serviceMonitor.enabled=true but the cluster has no monitoring.coreos.com/v1 API"
    )
    assert message in result.stderr, result.stderr
    _assert_rejected(helm, api, namespace, result)
