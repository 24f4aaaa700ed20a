"""SQLite on a PersistentVolumeClaim: a task survives the deletion of its pod.

The claim uses the cluster's default StorageClass: on the local cluster, `local-static`, static
local PersistentVolumes that ci/node-up.sh makes on the node; on kind, its local-path provisioner.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import requests
from kubernetes import client

from .conftest import WAIT, Cluster, Helm, api_pods, pod_ready, port_forward, wait_until

RELEASE = "keep"
TOKEN = "keep-token-0123456789abcdef"


def test_a_task_on_sqlite_with_persistence_survives_deleting_the_pod(
    helm: Helm,
    api: client.ApiClient,
    cluster: Cluster,
    restricted_namespace: Callable[[str], str],
) -> None:
    namespace = restricted_namespace("keep")
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="keep-tokens"),
            data={"tokens": base64.b64encode(f"ops:{TOKEN}\n".encode()).decode()},
        ),
    )
    result = helm.install(
        RELEASE,
        namespace,
        "values-dev.yaml",
        set_values={
            "database.sqlite.persistence.enabled": "true",
            "auth.existingSecret": "keep-tokens",
            # Only the API and its volume matter here.
            "otel-collector.enabled": "false",
            "jaeger.enabled": "false",
        },
        extra=WAIT,
    )
    assert result.returncode == 0, result.stderr
    auth = {"Authorization": f"Bearer {TOKEN}"}
    service = f"svc/{RELEASE}-task-manager"

    with port_forward(cluster, namespace, service, 8080) as url:
        created = requests.post(
            f"{url}/api/v1/tasks", json={"title": "kept"}, headers=auth, timeout=10
        )
        assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    (first,) = api_pods(api, namespace, RELEASE)
    core.delete_namespaced_pod(first.metadata.name, namespace)
    wait_until(
        "a new ready pod",
        lambda: any(
            pod_ready(p) and p.metadata.uid != first.metadata.uid
            for p in api_pods(api, namespace, RELEASE)
        ),
        timeout=180,
    )
    wait_until(
        "the old pod to be gone",
        lambda: (
            first.metadata.uid not in {p.metadata.uid for p in api_pods(api, namespace, RELEASE)}
        ),
    )

    with port_forward(cluster, namespace, service, 8080) as url:
        read = requests.get(f"{url}/api/v1/tasks/{task_id}", headers=auth, timeout=10)
    assert read.status_code == 200, read.text
    assert read.json()["title"] == "kept"

    claims = core.list_namespaced_persistent_volume_claim(namespace).items
    assert [c.status.phase for c in claims] == ["Bound"], claims
    helm.ok("uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "2m")
    # keepOnUninstall (the default) keeps the claim and the data; the namespace's deletion ends it.
    assert [c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items]
