"""values-prod.yaml through its whole life: install, upgrade under load, rollback and uninstall.

The tests of this module run in order on one release, as an operator would drive it, on PostgreSQL
(a server on the host that the pods reach on the local cluster; one in the cluster on kind). The
rolling upgrade and a pod deletion each run under a bounded load from inside the cluster
(tests/cluster/loadgen.py); their figures are written to build/cluster-load.md.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import (
    REPO_ROOT,
    WAIT,
    Cluster,
    Helm,
    JobWatch,
    LoadResult,
    api_pods,
    list_objects,
    load,
    namespace_diagnostics,
    pod_ready,
    port_forward,
    release_objects,
    wait_until,
)

RELEASE = "prod"
SECRET = "task-manager-secrets"  # values-prod.yaml: database.postgresql.existingSecret
MIGRATION_JOB = f"{RELEASE}-task-manager-migration"
TOKEN = "prod-token-0123456789abcdef"
KPS_RELEASE = {"release": "kube-prometheus-stack"}
FIGURES = REPO_ROOT / "build" / "cluster-load.md"
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
    return {p.metadata.uid for p in api_pods(api, namespace, RELEASE)}


def _ready_app_pods(api: client.ApiClient, namespace: str) -> set[str]:
    return {p.metadata.uid for p in api_pods(api, namespace, RELEASE) if pod_ready(p)}


@pytest.fixture(scope="module")
def release(
    cluster: Cluster,
    helm: Helm,
    api: client.ApiClient,
    database_url: Callable[[], str],
    restricted_namespace: Callable[[str], str],
) -> Release:
    FIGURES.unlink(missing_ok=True)
    namespace = restricted_namespace("prod")
    # values-prod.yaml reads the database URL and the tokens from a Secret the user manages.
    url = database_url()
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            data={
                "database-url": base64.b64encode(url.encode()).decode(),
                "tokens": base64.b64encode(f"ops:{TOKEN}\n".encode()).decode(),
            },
        ),
    )
    with JobWatch(api, namespace) as jobs:
        result = helm.install(RELEASE, namespace, "values-prod.yaml", extra=WAIT)
    assert result.returncode == 0, result.stderr + namespace_diagnostics(cluster, namespace)
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
    assert DASHBOARDS, "grafana-dashboards/ has no dashboards"
    configmaps = list_objects(
        api, release.namespace, "v1", "configmaps", f"app.kubernetes.io/instance={RELEASE}"
    )
    dashboards = [c for c in configmaps if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(k for c in dashboards for k in c["data"]) == [p.name for p in DASHBOARDS]


def _acked_writes_missing(cluster: Cluster, namespace: str, result: LoadResult) -> list[str]:
    """The acknowledged creates of a load run that the API no longer returns."""
    seen: set[str] = set()
    with port_forward(cluster, namespace, f"svc/{RELEASE}-task-manager", 8080) as url:
        cursor: str | None = ""
        while cursor is not None:
            page = requests.get(
                f"{url}/api/v1/tasks",
                params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            assert page.status_code == 200, page.text
            seen |= {t["id"] for t in page.json()["items"]}
            cursor = page.json()["next_cursor"]
    return [i for i in result.acked if i not in seen]


def _record(scenario: str, result: LoadResult, missing: list[str]) -> None:
    FIGURES.parent.mkdir(exist_ok=True)
    if not FIGURES.exists():
        FIGURES.write_text(
            "| scenario | seconds | requests sent | failed | acknowledged writes | missing |\n"
            "| --- | --- | --- | --- | --- | --- |\n"
        )
    with FIGURES.open("a") as figures:
        figures.write(
            f"| {scenario} | {result.seconds} | {result.sent} | {result.failed} "
            f"| {len(result.acked)} | {len(missing)} |\n"
        )


def _assert_no_loss(scenario: str, cluster: Cluster, namespace: str, result: LoadResult) -> None:
    missing = _acked_writes_missing(cluster, namespace, result)
    _record(scenario, result, missing)
    assert result.sent >= 100, result
    assert result.failed == 0, result.errors
    assert result.acked, "the load acknowledged no write"
    assert missing == [], f"{len(missing)} acknowledged writes are missing: {missing[:5]}"


def test_prod_upgrade_under_load_rolls_every_pod_without_a_failed_request_or_a_lost_write(
    helm: Helm,
    api: client.ApiClient,
    cluster: Cluster,
    release: Release,
) -> None:
    with (
        load(cluster, api, release.namespace, RELEASE, SECRET) as result,
        JobWatch(api, release.namespace) as jobs,
    ):
        upgrade = helm.install(
            RELEASE,
            release.namespace,
            "values-prod.yaml",
            set_values={"config.logLevel": "WARNING"},
            extra=WAIT,
            command="upgrade",
        )
        assert upgrade.returncode == 0, upgrade.stderr
        wait_until(
            "the old pods to be replaced by three ready new ones",
            lambda: (
                len(_ready_app_pods(api, release.namespace)) == 3
                and not _app_pods(api, release.namespace) & release.pod_uids[0]
            ),
        )
    _assert_no_loss("rolling upgrade (helm upgrade, 3 pods)", cluster, release.namespace, result)

    ran = jobs.succeeded(MIGRATION_JOB)
    assert len(ran) == 1, jobs.jobs
    assert ran[0].uid not in release.install_jobs.jobs
    assert "pre-upgrade" in ran[0].annotations["helm.sh/hook"]
    checksum = _app_deployment(api, release.namespace).spec.template.metadata.annotations[
        "checksum/config"
    ]
    assert checksum != release.checksums[0]
    release.checksums.append(checksum)
    release.pod_uids.append(_app_pods(api, release.namespace))


def test_prod_pod_deleted_under_load_loses_no_request_and_no_write(
    api: client.ApiClient, cluster: Cluster, release: Release
) -> None:
    core = client.CoreV1Api(api)
    before = _ready_app_pods(api, release.namespace)
    victim = api_pods(api, release.namespace, RELEASE)[0].metadata

    def victim_gone() -> bool:
        try:
            return (
                core.read_namespaced_pod(victim.name, release.namespace).metadata.uid != victim.uid
            )
        except ApiException as e:
            return e.status == 404

    # The load runs until the deleted pod has gone all the way (preStop sleep, drain, exit) and its
    # replacement serves, so every phase of the deletion is under traffic.
    with load(cluster, api, release.namespace, RELEASE, SECRET) as result:
        core.delete_namespaced_pod(victim.name, release.namespace)
        wait_until("the deleted pod to be gone", victim_gone, timeout=180)
        wait_until(
            "three ready pods again",
            lambda: len(_ready_app_pods(api, release.namespace)) == 3,
        )
    assert len(before) == 3
    _assert_no_loss("one pod deleted (kubectl delete pod)", cluster, release.namespace, result)


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
