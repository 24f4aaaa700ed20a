"""Fixtures of the cluster tier: the chart installed by the real helm into a cluster whose pods run.

By default the suite uses the local cluster of ci/cluster-up.sh: a control plane built from source
(etcd, kube-apiserver, controller-manager, scheduler) and one real node (kubelet, containerd, runc,
kube-proxy, CoreDNS) whose images were imported by ci/node-images.sh; it starts one when none is
running and stops it again afterwards. With USE_EXISTING_CLUSTER=1 (the kind job of the GitHub
workflow) it uses the cluster of the current kube context instead and leaves it running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from pytest_helm_charts.k8s.fixtures import NamespaceFactoryFunc

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = REPO_ROOT / ".cluster" / "kubeconfig"
CRDS_DIR = REPO_ROOT / ".tools" / "crds"
HELM_TIMEOUT = "5m"
WAIT = ("--wait", "--wait-for-jobs", "--timeout", HELM_TIMEOUT)
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}
API_LABELS = "app.kubernetes.io/name=task-manager,app.kubernetes.io/component=api"
# The local node's containerd (CONTAINERD_SOCKET in ci/cluster-lib.sh).
NODE_CONTAINERD_SOCKET = "/run/task-manager-node/containerd/containerd.sock"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    # True for the local cluster of ci/cluster-up.sh (its node's bridge is reachable from here).
    local: bool


def _bin(name: str) -> str:
    local = REPO_ROOT / ".tools" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `make tools`")
    return found


def _local_cluster_healthy() -> bool:
    if not LOCAL_KUBECONFIG.exists():
        return False
    probe = subprocess.run(
        [_bin("kubectl"), "--kubeconfig", str(LOCAL_KUBECONFIG), "get", "--raw=/readyz"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("USE_EXISTING_CLUSTER") == "1":
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        yield Cluster(kubeconfig=kubeconfig, local=False)
        return
    started = not _local_cluster_healthy()
    if started:
        subprocess.run([str(REPO_ROOT / "ci" / "cluster-up.sh")], check=True, timeout=900)
        subprocess.run([str(REPO_ROOT / "ci" / "node-images.sh")], check=True, timeout=1800)
    try:
        yield Cluster(kubeconfig=str(LOCAL_KUBECONFIG), local=True)
    finally:
        if started:
            subprocess.run([str(REPO_ROOT / "ci" / "cluster-down.sh")], check=False, timeout=300)


def kubectl(
    cluster: Cluster, *args: str, timeout: float = 120, check: bool = True, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The pinned kubectl against the cluster under test (stdin for `apply -f -` and the like)."""
    result = subprocess.run(
        [_bin("kubectl"), "--kubeconfig", cluster.kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result


@contextmanager
def port_forward(cluster: Cluster, namespace: str, target: str, port: int) -> Iterator[str]:
    """kubectl port-forward TARGET to a free loopback port; yields http://127.0.0.1:<port>."""
    process = subprocess.Popen(
        [
            _bin("kubectl"),
            "--kubeconfig",
            cluster.kubeconfig,
            "-n",
            namespace,
            "port-forward",
            "--address",
            "127.0.0.1",
            target,
            f":{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> PORT"
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if found is None:
            process.kill()
            _, err = process.communicate(timeout=10)
            pytest.fail(f"port-forward {target} {port} did not start: {line}{err}")
        yield f"http://127.0.0.1:{found[1]}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def api_pods(api: client.ApiClient, namespace: str, release: str) -> list[Any]:
    """The release's API pods that are not being deleted (Jobs' pods excluded)."""
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={release},{API_LABELS}"
    )
    return [p for p in pods.items if p.metadata.deletion_timestamp is None]


def namespace_diagnostics(cluster: Cluster, namespace: str) -> str:
    """What a failed install left in a namespace: the events and the last log lines of every pod
    (a hook Job's pods included), for an assertion message that says why, not only that."""
    pods = kubectl(cluster, "get", "pods", "-n", namespace, "-o", "name", check=False).stdout
    parts = [kubectl(cluster, "get", "events", "-n", namespace, check=False).stdout]
    for pod in pods.split():
        logs = kubectl(
            cluster, "logs", "-n", namespace, pod, "--all-containers", "--tail=20", check=False
        )
        parts.append(f"--- {pod}\n{logs.stdout}{logs.stderr}")
    return "\n".join(parts)


def pod_ready(pod: Any) -> bool:
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    return pod.status.phase == "Running" and conditions.get("Ready") == "True"


@pytest.fixture(scope="module")
def kube_config(cluster: Cluster) -> str:
    """pytest-helm-charts' kube_config, pointed at the cluster under test."""
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=cluster.kubeconfig)


@dataclass
class Helm:
    """The pinned helm binary against the cluster under test, with its own cache and config."""

    kubeconfig: str
    home: Path

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECACHEDIR": str(self.home / "kubecache"),
        }
        cmd = [_bin("helm"), *args]
        return subprocess.run(
            cmd, capture_output=True, text=True, env=env, check=False, timeout=timeout
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
        return result

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        out = self.ok("history", release, "--namespace", namespace, "--output", "json").stdout
        return list(json.loads(out))

    def install(
        self,
        release: str,
        namespace: str,
        *values_files: str,
        set_values: dict[str, str] | None = None,
        extra: Sequence[str] = (),
        command: str = "install",
    ) -> subprocess.CompletedProcess[str]:
        args = [command, release, str(REPO_ROOT), "--namespace", namespace]
        for f in values_files:
            args += ["--values", str(REPO_ROOT / f)]
        for key, value in (set_values or {}).items():
            args += ["--set", f"{key}={value}"]
        return self.run(*args, *extra)


@pytest.fixture(scope="session")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(kubeconfig=cluster.kubeconfig, home=tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def restricted_namespace(namespace_factory: NamespaceFactoryFunc) -> Callable[[str], str]:
    """restricted_namespace(prefix) -> a new namespace where the apiserver enforces `restricted`.

    Made with pytest-helm-charts' namespace_factory, which deletes it (and waits) at module end.
    """

    def _make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        namespace_factory(name, extra_metadata={"labels": RESTRICTED})
        return name

    return _make


@dataclass
class JobRecord:
    uid: str
    name: str
    succeeded: int
    annotations: dict[str, str]


@dataclass
class JobWatch:
    """Records every Job seen in a namespace, even ones helm deletes right after they succeed."""

    api: client.ApiClient
    namespace: str
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> JobWatch:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the Job watch did not start"
        return self

    def _run(self) -> None:
        batch = client.BatchV1Api(self.api)
        version = batch.list_namespaced_job(self.namespace).metadata.resource_version
        self._ready.set()
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    batch.list_namespaced_job,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=2,
                ):
                    job: Any = event["object"]
                    version = job.metadata.resource_version
                    seen = self.jobs.get(job.metadata.uid)
                    succeeded = max(job.status.succeeded or 0, seen.succeeded if seen else 0)
                    self.jobs[job.metadata.uid] = JobRecord(
                        uid=job.metadata.uid,
                        name=job.metadata.name,
                        succeeded=succeeded,
                        annotations=dict(job.metadata.annotations or {}),
                    )
                    if self._stop.is_set():
                        break
            except ApiException as e:
                if e.status != 410:
                    raise
                version = batch.list_namespaced_job(self.namespace).metadata.resource_version

    def __exit__(self, *exc: object) -> None:
        time.sleep(1)  # let the last events of the command arrive
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def succeeded(self, name: str) -> list[JobRecord]:
        return [j for j in self.jobs.values() if j.name == name and j.succeeded >= 1]


def crds_present(api: client.ApiClient, group: str) -> list[str]:
    crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    return [c.metadata.name for c in crds if c.spec.group == group]


def apply_crds(kubeconfig: str) -> None:
    """(Re)installs every CRD of ci/crds.sh and waits until they are served."""
    kubectl = [_bin("kubectl"), "--kubeconfig", kubeconfig]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(CRDS_DIR)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [*kubectl, "wait", "--for", "condition=established", "crd", "--all", "--timeout=60s"],
        check=True,
        capture_output=True,
        timeout=90,
    )


# Kinds a release can leave behind, by (API group/version, plural).
RELEASE_KINDS = [
    ("apps/v1", "deployments"),
    ("apps/v1", "replicasets"),
    ("v1", "pods"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("v1", "secrets"),
    ("v1", "serviceaccounts"),
    ("v1", "persistentvolumeclaims"),
    ("batch/v1", "jobs"),
    ("autoscaling/v2", "horizontalpodautoscalers"),
    ("policy/v1", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("networking.k8s.io/v1", "ingresses"),
    ("monitoring.coreos.com/v1", "servicemonitors"),
    ("monitoring.coreos.com/v1", "prometheusrules"),
    ("gateway.networking.k8s.io/v1", "httproutes"),
]


CORE_LISTS = {
    "pods": "list_namespaced_pod",
    "services": "list_namespaced_service",
    "configmaps": "list_namespaced_config_map",
    "secrets": "list_namespaced_secret",
    "serviceaccounts": "list_namespaced_service_account",
    "persistentvolumeclaims": "list_namespaced_persistent_volume_claim",
}


def list_objects(
    api: client.ApiClient, namespace: str, group_version: str, plural: str, selector: str = ""
) -> list[dict[str, Any]]:
    """Lists any kind (core, apps, CRDs) in a namespace as plain dicts, as the API returns them."""
    try:
        if group_version == "v1":
            listed = getattr(client.CoreV1Api(api), CORE_LISTS[plural])(
                namespace, label_selector=selector
            )
            return list(api.sanitize_for_serialization(listed).get("items", []))
        group, version = group_version.split("/")
        data = client.CustomObjectsApi(api).list_namespaced_custom_object(
            group, version, namespace, plural, label_selector=selector
        )
    except ApiException as e:
        if e.status == 404:  # the kind's API is not served (its CRD is not installed)
            return []
        raise
    return list(data.get("items", []))


def release_objects(api: client.ApiClient, namespace: str, release: str) -> dict[str, list[str]]:
    """Every object of RELEASE_KINDS in the namespace that belongs to the release."""
    found: dict[str, list[str]] = {}
    for group_version, plural in RELEASE_KINDS:
        items = list_objects(
            api, namespace, group_version, plural, f"app.kubernetes.io/instance={release}"
        )
        if plural == "secrets":  # helm's own release records
            items += list_objects(api, namespace, "v1", plural, f"owner=helm,name={release}")
        names = [i["metadata"]["name"] for i in items]
        if names:
            found[plural] = names
    return found


def wait_until(
    what: str,
    predicate: Callable[[], bool],
    timeout: float = 120,
    detail: Callable[[], object] = str,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}: {detail()}")
        time.sleep(1)


# --- PostgreSQL for the prod-like releases ---------------------------------------------------


@pytest.fixture(scope="session")
def database_url(cluster: Cluster, api: client.ApiClient) -> Iterator[Callable[[], str]]:
    """database_url() -> the URL of a new, empty PostgreSQL database that pods can reach.

    CLUSTER_TEST_DATABASE_URL when set (the kind job runs PostgreSQL in the cluster); on the local
    cluster, a throwaway server on this host listening on the node's bridge address, which pods
    reach directly (password auth from the pod network, trust on loopback only).
    """
    configured = os.environ.get("CLUSTER_TEST_DATABASE_URL")
    if configured:
        yield lambda: configured
        return
    if not cluster.local:
        pytest.fail("set CLUSTER_TEST_DATABASE_URL to a PostgreSQL database the pods can reach")
    from support.postgres import running_postgres

    node = client.CoreV1Api(api).list_node().items[0]
    node_ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    pod_network = node_ip.rsplit(".", 1)[0] + ".0/24"
    with running_postgres(also_listen_on=node_ip, clients=pod_network) as server:
        yield lambda: server.create_database(host=node_ip)


# --- bounded load from inside the cluster ----------------------------------------------------

LOADGEN = Path(__file__).with_name("loadgen.py")


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    seconds: float = 0.0


@contextmanager
def load(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    release: str,
    tokens_secret: str,
    rate: float = 20,
    max_seconds: int = 240,
) -> Iterator[LoadResult]:
    """Runs tests/cluster/loadgen.py in a restricted pod against the release's Service while the
    block runs; the yielded result is filled in when the block ends (the load stops then)."""
    core = client.CoreV1Api(api)
    name = f"load-{uuid.uuid4().hex[:6]}"
    apps = client.AppsV1Api(api)
    deployment = apps.read_namespaced_deployment(f"{release}-task-manager", namespace)
    pod_spec = deployment.spec.template.spec
    image = pod_spec.containers[0].image
    script = {"loadgen.py": LOADGEN.read_text()}
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=script)
    )
    restricted = client.V1SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=10001,
        run_as_group=10001,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    url = f"http://{release}-task-manager:8080"
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(
                restart_policy="Never",
                automount_service_account_token=False,
                enable_service_links=False,
                containers=[
                    client.V1Container(
                        name="load",
                        image=image,
                        image_pull_policy="IfNotPresent",
                        command=[
                            *("python3", "/load/loadgen.py", url, "/tokens/tokens"),
                            *(str(rate), str(max_seconds), "/tmp/stop"),
                        ],
                        security_context=restricted,
                        resources=client.V1ResourceRequirements(
                            requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}
                        ),
                        volume_mounts=[
                            client.V1VolumeMount(name=v, mount_path=f"/{v}", read_only=v != "tmp")
                            for v in ("load", "tokens", "tmp")
                        ],
                    )
                ],
                volumes=[
                    client.V1Volume(
                        name="load", config_map=client.V1ConfigMapVolumeSource(name=name)
                    ),
                    client.V1Volume(
                        name="tokens",
                        secret=client.V1SecretVolumeSource(
                            secret_name=tokens_secret,
                            items=[client.V1KeyToPath(key="tokens", path="tokens")],
                        ),
                    ),
                    client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource()),
                ],
            ),
        ),
    )
    result = LoadResult()
    try:

        def phase() -> str:
            return str(core.read_namespaced_pod(name, namespace).status.phase)

        wait_until("the load pod to run", lambda: phase() in ("Running", "Succeeded"), timeout=120)
        yield result
        stop = ("python3", "-c", "open('/tmp/stop', 'w')")
        kubectl(cluster, "-n", namespace, "exec", name, "--", *stop)
        wait_until("the load pod to finish", lambda: phase() in ("Succeeded", "Failed"), timeout=60)
        logs = core.read_namespaced_pod_log(name, namespace).strip().splitlines()
        assert logs, "the load pod printed nothing"
        for key, value in json.loads(logs[-1]).items():
            setattr(result, key, value)
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        core.delete_namespaced_config_map(name, namespace)
