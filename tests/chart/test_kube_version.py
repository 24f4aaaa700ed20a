"""Chart.yaml's kubeVersion is exactly the range CI validates: its lowest and highest minors are the
Kubernetes schemas kubeconform checks every render against (ci/versions.env KUBE_SCHEMA_VERSIONS),
helm renders at both ends and refuses the minors on either side."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from .conftest import REPO_ROOT, _helm

CHART = yaml.safe_load((REPO_ROOT / "Chart.yaml").read_text())


def _schema_versions() -> list[str]:
    text = (REPO_ROOT / "ci" / "versions.env").read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("KUBE_SCHEMA_VERSIONS=")]
    return line.split("=", 1)[1].strip('"').split()


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.match(r"v?(\d+)\.(\d+)", version).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


def _template(kube_version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_helm(), "template", "tm", str(REPO_ROOT), "--kube-version", kube_version],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_kube_version_range_is_the_validated_schemas_lowest_to_highest_minor() -> None:
    lowest, highest = (_minor(v) for v in (_schema_versions()[0], _schema_versions()[-1]))
    assert CHART["kubeVersion"] == (
        f">={lowest[0]}.{lowest[1]}.0-0 <{highest[0]}.{highest[1] + 1}.0-0"
    ), "change kubeVersion and KUBE_SCHEMA_VERSIONS together (README: Kubernetes versions)"


def _ends() -> list[str]:
    lowest, highest = (_minor(v) for v in (_schema_versions()[0], _schema_versions()[-1]))
    return [
        f"v{lowest[0]}.{lowest[1]}.0",
        # Managed clusters report pre-release style versions (EKS, GKE).
        f"v{lowest[0]}.{lowest[1]}.5-eks-0123456",
        f"v{highest[0]}.{highest[1]}.0",
        f"v{highest[0]}.{highest[1]}.9-gke.1000",
    ]


def _outside() -> list[str]:
    lowest, highest = (_minor(v) for v in (_schema_versions()[0], _schema_versions()[-1]))
    return [f"v{lowest[0]}.{lowest[1] - 1}.99", f"v{highest[0]}.{highest[1] + 1}.0"]


@pytest.mark.parametrize("kube_version", _ends())
def test_the_chart_renders_at_both_ends_of_the_range(kube_version: str) -> None:
    result = _template(kube_version)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kube_version", _outside())
def test_the_chart_refuses_the_minors_outside_the_range(kube_version: str) -> None:
    result = _template(kube_version)
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "incompatible" in result.stderr, result.stderr
