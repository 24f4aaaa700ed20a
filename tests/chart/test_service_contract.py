"""The rendered chart against the real service: its settings parse, its probes and scrape answer,
and the `helm test` pod's script passes (and fails with a wrong token).

Only what cannot exist outside a pod is rewritten: loopback host and free ports, the SQLite file and
the tokens file in a temporary directory.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.net import free_ports
from support.paths import REPO_ROOT

from .conftest import Manifest, Render, find, one

TASK_MANAGER = str(Path(sys.executable).with_name("task-manager"))
TOKEN = "chart-contract-token-0123456789"
SCENARIOS = {
    "default": (),
    "dev": ("values-dev.yaml",),
    "prod": ("values-prod.yaml",),
    "postgresql": ("tests/chart/values/postgresql.yaml",),
    "everything": ("tests/chart/values/everything.yaml",),
    "minimal": ("tests/chart/values/minimal.yaml",),
}


def _container(manifests: list[Manifest], kind: str) -> dict:
    (workload,) = [
        m
        for m in find(manifests, kind)
        if m["metadata"]["labels"].get("app.kubernetes.io/name") == "task-manager"
    ]
    return workload["spec"]["template"]["spec"]["containers"][0]


def _image_env() -> dict[str, str]:
    """The service settings the Dockerfile's ENV instructions bake into the image."""
    dockerfile = re.sub(r"\\\n", " ", (REPO_ROOT / "Dockerfile").read_text())
    pairs = (
        word.split("=", 1)
        for line in dockerfile.splitlines()
        if line.startswith("ENV ")
        for word in shlex.split(line[4:])
    )
    env = {k: v for k, v in pairs if k.startswith(("TASK_MANAGER_", "OTEL_"))}
    assert env, "the Dockerfile sets no service setting: this check would prove nothing"
    return env


def _env(manifests: list[Manifest], container: dict, tmp: Path) -> dict[str, str]:
    """The container's environment as the kubelet would build it (the image's ENV, then the
    pod's), files moved into tmp."""
    env = _image_env()
    for source in container.get("envFrom", []):
        env.update(one(manifests, "ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        assert "value" in var, f"{var['name']} is not a plain value: secrets are mounted files"
        env[var["name"]] = var["value"]
    if "TASK_MANAGER_DATABASE_URL_FILE" in env:
        # The mounted Secret; existingSecrets are the user's, so stand in a PostgreSQL URL.
        url = tmp / "database-url"
        url.write_text("postgresql://tasks:tasks@127.0.0.1:1/tasks\n")
        env["TASK_MANAGER_DATABASE_URL_FILE"] = str(url)
    if "OTEL_EXPORTER_OTLP_HEADERS_FILE" in env:
        headers = tmp / "otlp-headers"
        headers.write_text("x-api-key=chart-contract\n")
        env["OTEL_EXPORTER_OTLP_HEADERS_FILE"] = str(headers)
    if "TASK_MANAGER_AUTH_TOKENS_FILE" in env:
        tokens = tmp / "tokens"
        tokens.write_text(f"# mounted from the chart's Secret\nci:{TOKEN}\n")
        env["TASK_MANAGER_AUTH_TOKENS_FILE"] = str(tokens)
    if env.get("TASK_MANAGER_DATABASE_URL", "").startswith("sqlite:////var/lib/task-manager/"):
        env["TASK_MANAGER_DATABASE_URL"] = f"sqlite:///{tmp}/tasks.db"
    return env


# The migration Job exists where PostgreSQL is used; every scenario has the Deployment.
CASES = [(name, "Deployment") for name in SCENARIOS] + [
    (name, "Job") for name in ("prod", "postgresql", "everything")
]


def _task_manager(
    args: list[str], env: dict[str, str], home: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Runs the real `task-manager` CLI with a pod's rendered environment."""
    return subprocess.run(
        [TASK_MANAGER, *args],
        env={"PATH": os.environ["PATH"], "HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(("scenario", "kind"), CASES, ids=[f"{k}-{n}" for n, k in CASES])
def test_the_service_accepts_every_rendered_configuration(
    render: Render, tmp_path: Path, scenario: str, kind: str
) -> None:
    manifests = render(*SCENARIOS[scenario])
    env = _env(manifests, _container(manifests, kind), tmp_path)
    result = _task_manager(["check-config"], env, tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def served(render: Render, tmp_path: Path) -> Iterator[tuple[list[Manifest], str, str]]:
    """The default render's API container (ServiceMonitor on) as a real `task-manager serve`."""
    manifests = render(set_values={"metrics.serviceMonitor.enabled": "true"})
    env = _env(manifests, _container(manifests, "Deployment"), tmp_path)
    port, metrics_port = free_ports(2)
    env |= {
        "TASK_MANAGER_HOST": "127.0.0.1",
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [TASK_MANAGER, "serve"],
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base, metrics = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(base + "/livez", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield manifests, base, metrics
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_probes_and_scrape_answer_on_the_real_service(served) -> None:
    manifests, base, metrics = served
    container = _container(manifests, "Deployment")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        response = requests.get(base + container[probe]["httpGet"]["path"], timeout=5)
        assert response.status_code == 200, (probe, response.text)
    (endpoint,) = one(manifests, "ServiceMonitor")["spec"]["endpoints"]
    scrape = requests.get(metrics + endpoint["path"], timeout=5)
    assert scrape.status_code == 200
    assert "# TYPE" in scrape.text


def _helm_test_script(manifests: list[Manifest]) -> str:
    (pod,) = find(manifests, "Pod")
    return pod["spec"]["containers"][0]["command"][2]


def test_the_helm_test_pod_passes_against_the_real_service(served, tmp_path: Path) -> None:
    manifests, base, _ = served
    result = subprocess.run(
        [sys.executable, "-c", _helm_test_script(manifests)],
        env={"BASE_URL": base, "TOKENS_FILE": str(tmp_path / "tokens")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ok: /readyz and an authenticated GET /api/v1/tasks" in result.stdout


def test_the_helm_test_pod_fails_with_a_wrong_token(served, tmp_path: Path) -> None:
    manifests, base, _ = served
    wrong = tmp_path / "wrong-tokens"
    wrong.write_text("ci:not-the-token\n")
    result = subprocess.run(
        [sys.executable, "-c", _helm_test_script(manifests)],
        env={"BASE_URL": base, "TOKENS_FILE": str(wrong)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "401" in result.stderr


def test_the_migration_job_command_migrates_with_its_rendered_environment(
    render: Render, tmp_path: Path
) -> None:
    manifests = render("tests/chart/values/postgresql.yaml")
    job = _container(manifests, "Job")
    env = _env(manifests, job, tmp_path)
    # The one substitution: SQLite in tmp for the PostgreSQL server the Job would reach.
    Path(env["TASK_MANAGER_DATABASE_URL_FILE"]).write_text(f"sqlite:///{tmp_path}/migrated.db")
    result = _task_manager(job["args"], env, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "migrated.db").stat().st_size > 0
