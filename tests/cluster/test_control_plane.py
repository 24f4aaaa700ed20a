"""The cluster under test is one the chart's assertions mean something on."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import REPO_ROOT, Cluster


def _versions_env() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(\S+)$", (REPO_ROOT / "ci/versions.env").read_text(), re.M)
    return dict(pairs)


def test_server_reports_a_real_version_inside_the_charts_kube_version(
    api: client.ApiClient, cluster: Cluster
) -> None:
    info = client.VersionApi(api).get_code()
    if cluster.local:
        assert info.git_version == "v" + _versions_env()["KUBERNETES_VERSION"]
    minor = int(re.sub(r"\D.*", "", info.minor))
    kube_version = yaml.safe_load((REPO_ROOT / "Chart.yaml").read_text())["kubeVersion"]
    lower = re.search(r">=\s*1\.(\d+)", kube_version)
    upper = re.search(r"<\s*1\.(\d+)", kube_version)
    assert info.major == "1"
    assert lower is None or minor >= int(lower[1]), (info.git_version, kube_version)
    assert upper is None or minor < int(upper[1]), (info.git_version, kube_version)


def test_the_apiserver_itself_rejects_a_pod_that_breaks_restricted(
    api: client.ApiClient, restricted_namespace: Callable[[str], str]
) -> None:
    namespace = restricted_namespace("psa")
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="root"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
    )
    with pytest.raises(ApiException) as rejected:
        client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
    assert rejected.value.status == 403
    message = json.loads(rejected.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message, message
