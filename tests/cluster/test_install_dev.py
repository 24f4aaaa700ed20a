"""values-dev.yaml installs, waits until available, passes `restricted` and uninstalls cleanly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from .conftest import WAIT, Cluster, Helm, release_objects, wait_until

RELEASE = "dev"


@pytest.fixture(scope="module")
def installed(helm: Helm, restricted_namespace: Callable[[str], str]) -> str:
    namespace = restricted_namespace("dev")
    result = helm.install(RELEASE, namespace, "values-dev.yaml", extra=WAIT)
    assert result.returncode == 0, result.stderr
    return namespace


def _deployments(api: client.ApiClient, namespace: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    apps = client.AppsV1Api(api)
    return list(apps.list_namespaced_deployment(namespace, label_selector=selector).items)


def test_dev_install_waits_until_every_deployment_is_available(
    api: client.ApiClient, installed: str
) -> None:
    deployments = _deployments(api, installed)
    names = {d.metadata.name for d in deployments}
    # The app, the OpenTelemetry Collector and Jaeger (both subcharts are on in dev).
    assert len(deployments) >= 3, names
    for d in deployments:
        available = {c.type: c.status for c in d.status.conditions or []}.get("Available")
        assert available == "True", (d.metadata.name, d.status)
        assert d.status.available_replicas == d.spec.replicas, d.metadata.name


def test_dev_pods_were_admitted_under_the_restricted_pod_security_standard(
    api: client.ApiClient, installed: str
) -> None:
    core = client.CoreV1Api(api)
    labels = core.read_namespace(installed).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = core.list_namespaced_pod(installed).items
    assert pods, "no pods were created"
    for pod in pods:
        assert pod.spec.security_context.run_as_non_root is True, pod.metadata.name
        assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault", pod.metadata.name
        for c in pod.spec.containers:
            assert c.security_context.allow_privilege_escalation is False, c.name
            assert c.security_context.capabilities.drop == ["ALL"], c.name


def test_helm_test_pod_is_created_with_a_restricted_security_context(
    helm: Helm, api: client.ApiClient, cluster: Cluster, installed: str
) -> None:
    # Under kwok no container runs, so `helm test` cannot pass here and its result is never faked:
    # the test pod only gets kwok's Running/Ready status. With a real kubelet it must pass.
    timeout = "30s" if cluster.simulated else "5m"
    result = helm.run("test", RELEASE, "--namespace", installed, "--timeout", timeout)
    core = client.CoreV1Api(api)
    pods = [
        p
        for p in core.list_namespaced_pod(installed).items
        if (p.metadata.annotations or {}).get("helm.sh/hook") == "test"
    ]
    if not cluster.simulated:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode != 0, "helm test cannot succeed without a kubelet; was it faked?"
    assert len(pods) == 1, [p.metadata.name for p in pods]
    pod = pods[0]
    assert pod.status.phase != "Succeeded"
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    assert pod.spec.automount_service_account_token is False
    for c in pod.spec.containers:
        assert c.security_context.allow_privilege_escalation is False
        assert c.security_context.read_only_root_filesystem is True
        assert c.security_context.capabilities.drop == ["ALL"]
    # Helm keeps a test pod that did not succeed (hook-delete-policy hook-succeeded) for its logs,
    # and `helm uninstall` does not remove test hooks: clean it up as an operator would.
    core.delete_namespaced_pod(pod.metadata.name, installed, grace_period_seconds=0)


def test_dev_uninstall_leaves_nothing_of_the_release(
    helm: Helm, api: client.ApiClient, installed: str
) -> None:
    assert release_objects(api, installed, RELEASE)
    helm.ok("uninstall", RELEASE, "--namespace", installed, "--wait", "--timeout", "2m")
    wait_until(
        "the release's objects to be gone",
        lambda: not release_objects(api, installed, RELEASE),
        detail=lambda: release_objects(api, installed, RELEASE),
    )
