"""The generated Kubernetes and CRD JSON schemas are strict: kubeconform accepts the rendered chart
and rejects the same manifests with an unknown field nested deep inside, or a wrong type."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, Manifest, Render, one

TOOLS = REPO_ROOT / ".tools"
KUBE_VERSIONS = next(
    line.split("=", 1)[1].strip('"').split()
    for line in (REPO_ROOT / "ci" / "versions.env").read_text().splitlines()
    if line.startswith("KUBE_SCHEMA_VERSIONS=")
)


def kubeconform(
    manifests: list[Manifest], version: str, tmp_path: Path
) -> subprocess.CompletedProcess:
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(manifests))
    schemas = TOOLS / "schemas"
    for required in (schemas / f"{version}-standalone-strict", schemas / "crds"):
        if not required.exists():
            pytest.fail(f"{required} missing: run ci/chart-check.sh (make chart-check)")
    return subprocess.run(
        [
            str(TOOLS / "bin" / "kubeconform"),
            "-strict",
            "-kubernetes-version",
            version.lstrip("v"),
            "-schema-location",
            str(schemas) + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
            "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            str(schemas / "crds")
            + "/{{ .Group }}-{{ .ResourceKind }}-{{ .ResourceAPIVersion }}.json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_the_prod_render_is_valid(render: Render, version: str, tmp_path: Path) -> None:
    result = kubeconform(render("values-prod.yaml"), version, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize(
    ("kind", "mutate", "complaint"),
    [
        (
            "Deployment",
            lambda m: m["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
                runAsNonRot=True
            ),
            "runAsNonRot",
        ),
        (
            "Deployment",
            lambda m: m["spec"]["template"]["spec"]["containers"][0].update(replicas="3"),
            "replicas",
        ),
        (
            "HorizontalPodAutoscaler",
            lambda m: m["spec"].update(maxReplicas="ten"),
            "maxReplicas",
        ),
        (
            "ServiceMonitor",
            lambda m: m["spec"]["endpoints"][0].update(intervall="30s"),
            "intervall",
        ),
        (
            "PrometheusRule",
            lambda m: m["spec"]["groups"][0]["rules"][0].update(expresion="up"),
            "expresion",
        ),
    ],
)
def test_a_wrong_field_deep_inside_is_rejected(
    render: Render, version: str, kind: str, mutate, complaint: str, tmp_path: Path
) -> None:
    manifests = render("values-prod.yaml")
    broken = copy.deepcopy(one(manifests, kind, "tm-task-manager"))
    mutate(broken)
    result = kubeconform([broken], version, tmp_path)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_an_httproute_with_an_unknown_field_is_rejected(render: Render, tmp_path: Path) -> None:
    manifests = render("tests/chart/values/everything.yaml")
    route = copy.deepcopy(one(manifests, "HTTPRoute"))
    assert kubeconform([route], KUBE_VERSIONS[-1], tmp_path).returncode == 0
    route["spec"]["rules"][0]["backendRefs"][0]["prot"] = 80
    result = kubeconform([route], KUBE_VERSIONS[-1], tmp_path)
    assert result.returncode != 0
    assert "prot" in result.stdout
