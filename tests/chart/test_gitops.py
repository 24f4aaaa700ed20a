"""The README's GitOps command: a `helm template` render (Argo CD, Flux) that sees no cluster."""

from __future__ import annotations

import re
import shlex
import subprocess

import yaml

from .conftest import REPO_ROOT, Manifest, _helm, find, one

SECTION = "## GitOps (Argo CD and Flux)"


def _documented_command() -> list[str]:
    """The first ```sh block of the README's GitOps section, as argv."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert SECTION in readme, f"README.md lacks the section {SECTION!r}"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the GitOps section has no ```sh block"
    argv = shlex.split(block.group(1).replace("\\\n", " "))
    assert argv[:2] == ["helm", "template"], argv
    return argv


def _run_documented_command() -> list[Manifest]:
    argv = _documented_command()
    # The pinned helm in place of whatever `helm` is on the PATH; no --api-versions, no cluster.
    cmd = [_helm(), *argv[1:]]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_documented_gitops_command_renders_without_a_cluster() -> None:
    argv = _documented_command()
    assert "--api-versions" not in argv
    manifests = _run_documented_command()
    assert find(manifests, "ServiceMonitor"), "the prod ServiceMonitors are missing"
    assert find(manifests, "PrometheusRule"), "the prod PrometheusRule is missing"


def test_the_documented_gitops_render_is_stable_and_reads_the_token_from_the_users_secret() -> None:
    first, second = _run_documented_command(), _run_documented_command()
    assert first == second, "two renders differ: a sync would change the release every time"
    api = one(first, "Deployment", "task-manager")
    volumes = {v["name"]: v for v in api["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tokens"]["secret"]["secretName"] == "task-manager-secrets"
    # No chart Secret carries a token: nothing is generated that a sync could regenerate.
    for secret in find(first, "Secret"):
        assert "tokens" not in secret.get("data", {}), secret["metadata"]["name"]


def test_a_generated_token_changes_with_every_render_which_is_why_gitops_needs_the_values() -> None:
    argv = [_helm(), "template", "tm", str(REPO_ROOT), "--namespace", "tasks"]

    def token() -> str:
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
        secret = one([d for d in yaml.safe_load_all(out) if d], "Secret", "tm-task-manager")
        return str(secret["data"]["tokens"])

    assert token() != token()
