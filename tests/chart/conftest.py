"""Chart tier fixtures: render the chart at the repository root with the real, pinned helm."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM = REPO_ROOT / ".tools" / "bin" / "helm"
RELEASE = "tm"
NAMESPACE = "tasks"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


def _helm() -> str:
    if HELM.exists():
        return str(HELM)
    found = shutil.which("helm")
    if found is None:
        pytest.fail("helm is missing: run `make tools`")
    return found


@pytest.fixture(scope="session")
def render() -> Render:
    """render(*values_files, set={...}, api_versions=[...]) -> the rendered manifests."""

    def _render(
        *values_files: str,
        set_values: dict[str, str] | None = None,
        api_versions: tuple[str, ...] = (
            "monitoring.coreos.com/v1",
            "gateway.networking.k8s.io/v1",
        ),
    ) -> list[Manifest]:
        cmd = [_helm(), "template", RELEASE, str(REPO_ROOT), "--namespace", NAMESPACE]
        for f in values_files:
            cmd += ["-f", str(REPO_ROOT / f)]
        for key, value in (set_values or {}).items():
            cmd += ["--set", f"{key}={value}"]
        for api in api_versions:
            cmd += ["--api-versions", api]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            raise RenderError(result.stderr)
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


class RenderError(Exception):
    """helm template failed; the message is helm's stderr."""


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]
