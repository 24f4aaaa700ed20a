"""Every values combination the chart tests render is accepted by the real apiserver (dry run)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from .conftest import REPO_ROOT, Cluster, Helm, _bin

COMBINATIONS = [
    pytest.param((), id="default"),
    pytest.param(("values-dev.yaml",), id="dev"),
    pytest.param(("values-prod.yaml",), id="prod"),
    *[
        pytest.param((str(p.relative_to(REPO_ROOT)),), id=p.stem)
        for p in sorted((REPO_ROOT / "tests" / "chart" / "values").glob("*.yaml"))
    ],
]


@pytest.fixture(scope="module")
def namespace(restricted_namespace: Callable[[str], str]) -> str:
    return restricted_namespace("dry-run")


@pytest.mark.parametrize("values_files", COMBINATIONS)
def test_every_rendered_manifest_passes_a_server_side_dry_run(
    helm: Helm, cluster: Cluster, namespace: str, values_files: tuple[str, ...]
) -> None:
    # --dry-run=server renders with the cluster's real capabilities (version, CRD APIs), hooks and
    # the test pod included; the apiserver then validates each object strictly (unknown fields
    # rejected, CRD schemas applied) and runs admission, PodSecurity `restricted` included.
    rendered = helm.install(
        "dry", namespace, *values_files, command="template", extra=["--dry-run=server"]
    )
    assert rendered.returncode == 0, rendered.stderr
    applied = subprocess.run(
        [
            *(_bin("kubectl"), "--kubeconfig", cluster.kubeconfig, "--namespace", namespace),
            *("create", "--dry-run=server", "--validate=strict", "--output", "name", "-f", "-"),
        ],
        input=rendered.stdout,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert applied.returncode == 0, applied.stderr
    assert "would violate PodSecurity" not in applied.stderr, applied.stderr
    created = applied.stdout.split()
    assert any(name.startswith("deployment.apps/") for name in created), created
