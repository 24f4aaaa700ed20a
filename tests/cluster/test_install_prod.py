"""values-prod.yaml through its whole life: install, upgrade, rollback and uninstall.

The tests of this module run in order on one release, as an operator would drive it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from .conftest import (
    REPO_ROOT,
    WAIT,
    Cluster,
    Helm,
    JobWatch,
    list_objects,
    release_objects,
    wait_until,
)

RELEASE = "prod"
SECRET = "task-manager-secrets"  # values-prod.yaml: database.postgresql.existingSecret
MIGRATION_JOB = f"{RELEASE}-task-manager-migration"
KPS_RELEASE = {"release": "kube-prometheus-stack"}
DASHBOARDS = sorted((REPO_ROOT / "grafana-dashboards").glob("*.json"))


@dataclass
class Release:
    namespace: str
    install_jobs: JobWatch
    checksums: list[str] = field(default_factory=list)
    pod_uids: list[set[str]] = field(default_factory=list)


def _app_deployment(api: client.ApiClient, namespace: str) -> Any:
    return client.AppsV1Api(api).read_namespaced_deployment(f"{RELEASE}-task-manager", namespace)


def _app_pods(api: client.ApiClient, namespace: str) -> set[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace,
        label_selector=f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=task-manager",
    )
    return {
        p.metadata.uid
        for p in pods.items
        if p.metadata.deletion_timestamp is None and "job-name" not in (p.metadata.labels or {})
    }


@pytest.fixture(scope="module")
def release(
    helm: Helm, api: client.ApiClient, cluster: Cluster, restricted_namespace: Callable[[str], str]
) -> Release:
    database_url = os.environ.get("CLUSTER_TEST_DATABASE_URL")
    if not cluster.simulated and not database_url:
        pytest.skip(
            "values-prod.yaml needs PostgreSQL on a real cluster: CLUSTER_TEST_DATABASE_URL"
        )
    namespace = restricted_namespace("prod")
    # values-prod.yaml reads the database URL and the tokens from a Secret the user manages.
    url = database_url or "postgresql://tasks:tasks@postgres.database.svc:5432/tasks"
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            data={
                "database-url": base64.b64encode(url.encode()).decode(),
                "tokens": base64.b64encode(b"ops:prod-token-0123456789abcdef\n").decode(),
            },
        ),
    )
    with JobWatch(api, namespace) as jobs:
        result = helm.install(RELEASE, namespace, "values-prod.yaml", extra=WAIT)
    assert result.returncode == 0, result.stderr
    state = Release(namespace=namespace, install_jobs=jobs)
    # With autoscaling on, the chart leaves spec.replicas to the HPA, whose controller raises the
    # Deployment to minReplicas (3) even without a metrics server.
    wait_until(
        "the HPA to scale the Deployment to 3 available pods",
        lambda: _app_deployment(api, namespace).status.available_replicas == 3,
        detail=lambda: _app_deployment(api, namespace).status,
    )
    state.checksums.append(
        _app_deployment(api, namespace).spec.template.metadata.annotations["checksum/config"]
    )
    state.pod_uids.append(_app_pods(api, namespace))
    return state


def test_prod_install_runs_the_migration_hook_job_first(release: Release) -> None:
    ran = release.install_jobs.succeeded(MIGRATION_JOB)
    assert len(ran) == 1, release.install_jobs.jobs
    assert "pre-install" in ran[0].annotations["helm.sh/hook"]


def test_prod_deployments_are_available_with_three_replicas_from_the_hpa(
    api: client.ApiClient, release: Release
) -> None:
    app = _app_deployment(api, release.namespace)
    assert app.status.available_replicas == 3
    assert len(release.pod_uids[0]) == 3
    deployments = client.AppsV1Api(api).list_namespaced_deployment(release.namespace).items
    for d in deployments:
        conditions = {c.type: c.status for c in d.status.conditions or []}
        assert conditions.get("Available") == "True", d.metadata.name


def test_prod_creates_the_hpa_pdb_and_network_policy(
    api: client.ApiClient, release: Release
) -> None:
    ns, selector = release.namespace, f"app.kubernetes.io/instance={RELEASE}"
    hpas = list_objects(api, ns, "autoscaling/v2", "horizontalpodautoscalers", selector)
    assert [(h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) for h in hpas] == [(3, 10)]
    assert hpas[0]["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-task-manager"
    pdbs = list_objects(api, ns, "policy/v1", "poddisruptionbudgets", selector)
    assert any(p["spec"].get("minAvailable") == 2 for p in pdbs), pdbs
    policies = list_objects(api, ns, "networking.k8s.io/v1", "networkpolicies", selector)
    assert policies, "values-prod.yaml enables the NetworkPolicy"


def test_prod_servicemonitor_and_rules_carry_the_kube_prometheus_stack_release_label(
    api: client.ApiClient, release: Release
) -> None:
    ns, selector = release.namespace, f"app.kubernetes.io/instance={RELEASE}"
    monitors = list_objects(api, ns, "monitoring.coreos.com/v1", "servicemonitors", selector)
    rules = list_objects(api, ns, "monitoring.coreos.com/v1", "prometheusrules", selector)
    assert monitors, "no ServiceMonitor"
    assert rules, "no PrometheusRule"
    for obj in monitors + rules:
        assert KPS_RELEASE.items() <= obj["metadata"]["labels"].items(), obj["metadata"]
    app_monitor = next(m for m in monitors if m["metadata"]["name"] == f"{RELEASE}-task-manager")
    assert [e.get("port") for e in app_monitor["spec"]["endpoints"]] == ["metrics"]
    groups = [g["name"] for r in rules for g in r["spec"]["groups"]]
    assert groups, "the PrometheusRule has no rule groups"


def test_prod_dashboards_are_configmaps_the_grafana_sidecar_selects(
    api: client.ApiClient, release: Release
) -> None:
    if not DASHBOARDS:
        pytest.skip("no dashboards in grafana-dashboards/ yet")
    configmaps = list_objects(
        api, release.namespace, "v1", "configmaps", f"app.kubernetes.io/instance={RELEASE}"
    )
    dashboards = [c for c in configmaps if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(k for c in dashboards for k in c["data"]) == [p.name for p in DASHBOARDS]


def test_prod_upgrade_with_a_config_change_rolls_the_pods_and_reruns_the_hook(
    helm: Helm, api: client.ApiClient, release: Release
) -> None:
    with JobWatch(api, release.namespace) as jobs:
        result = helm.install(
            RELEASE,
            release.namespace,
            "values-prod.yaml",
            set_values={"config.logLevel": "WARNING"},
            extra=WAIT,
            command="upgrade",
        )
    assert result.returncode == 0, result.stderr
    ran = jobs.succeeded(MIGRATION_JOB)
    assert len(ran) == 1, jobs.jobs
    assert ran[0].uid not in release.install_jobs.jobs
    assert "pre-upgrade" in ran[0].annotations["helm.sh/hook"]

    checksum = _app_deployment(api, release.namespace).spec.template.metadata.annotations[
        "checksum/config"
    ]
    assert checksum != release.checksums[0]
    release.checksums.append(checksum)
    wait_until(
        "the old pods to be replaced",
        lambda: (
            len(_app_pods(api, release.namespace)) == 3
            and not _app_pods(api, release.namespace) & release.pod_uids[0]
        ),
    )
    release.pod_uids.append(_app_pods(api, release.namespace))


def test_prod_rollback_restores_the_first_revision(
    helm: Helm, api: client.ApiClient, release: Release
) -> None:
    helm.ok("rollback", RELEASE, "1", "--namespace", release.namespace, *WAIT)
    history = helm.history(RELEASE, release.namespace)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"
    assert "Rollback to 1" in history[-1]["description"]
    deployment = _app_deployment(api, release.namespace)
    assert deployment.spec.template.metadata.annotations["checksum/config"] == release.checksums[0]
    configmap = client.CoreV1Api(api).read_namespaced_config_map(
        f"{RELEASE}-task-manager", release.namespace
    )
    assert "WARNING" not in str(configmap.data)


def test_prod_uninstall_leaves_nothing_of_the_release_hooks_included(
    helm: Helm, api: client.ApiClient, release: Release
) -> None:
    assert release_objects(api, release.namespace, RELEASE)
    helm.ok("uninstall", RELEASE, "--namespace", release.namespace, "--wait", "--timeout", "2m")
    wait_until(
        "the release's objects to be gone",
        lambda: not release_objects(api, release.namespace, RELEASE),
        detail=lambda: release_objects(api, release.namespace, RELEASE),
    )
    # Only the user's own Secret stays.
    secrets = client.CoreV1Api(api).list_namespaced_secret(release.namespace).items
    assert [s.metadata.name for s in secrets] == [SECRET]
