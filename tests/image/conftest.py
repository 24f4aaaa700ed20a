"""Image tier fixtures: the built image, run under the chart's securityContext on loopback ports.

Every container is started with the flags that mirror the chart's pod and container
securityContext (read-only root, UID/GID 10001, no capabilities, no privilege escalation) and the
chart's writable mounts (/tmp and /var/lib/task-manager as tmpfs), on the host network with the
service bound to 127.0.0.1 on free ports. Containers are always removed, pass or fail.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from support.net import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
# The chart's settings these tests mirror, from its default values.
CHART_VALUES = yaml.safe_load((REPO_ROOT / "values.yaml").read_text())
UID_GID = "{runAsUser}:{runAsGroup}".format(**CHART_VALUES["securityContext"])
DRAIN_SECONDS = int(CHART_VALUES["config"]["drainSeconds"])
# terminationGracePeriodSeconds is preStopSleepSeconds + drainSeconds + 5 and the preStop sleep runs
# before SIGTERM, so this is what the container has between SIGTERM and SIGKILL.
GRACE_PERIOD_S = DRAIN_SECONDS + 5
PRINCIPAL = "image-test"
START_TIMEOUT_S = 60.0


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=check, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Container:
    """A running task-manager container and what a test needs to talk to it."""

    name: str
    port: int
    metrics_port: int
    token: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def state(self) -> dict[str, str]:
        fmt = (
            "{{.State.Status}} {{.State.ExitCode}} "
            "{{if .State.Health}}{{.State.Health.Status}}{{end}}"
        )
        status, exit_code, *health = docker("inspect", "--format", fmt, self.name).stdout.split()
        return {"status": status, "exit_code": exit_code, "health": health[0] if health else ""}

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *argv, check=False)

    def stop(self, grace_period_s: int) -> float:
        """`docker stop`: SIGTERM, SIGKILL after the grace period. Returns the seconds taken."""
        started = time.monotonic()
        docker("stop", "--time", str(grace_period_s), self.name, timeout=grace_period_s + 30)
        return time.monotonic() - started


def run_container(
    image: str, data_volume: str | None = None, token: str | None = None, **extra_env: str
) -> Container:
    """Start a container; /var/lib/task-manager is a tmpfs unless data_volume names a volume."""
    port, metrics_port = free_ports(2)
    container = Container(
        name=f"task-manager-image-test-{uuid.uuid4().hex[:12]}",
        port=port,
        metrics_port=metrics_port,
        token=token or secrets.token_urlsafe(24),
        extra_env=extra_env,
    )
    env = {
        "TASK_MANAGER_HOST": "127.0.0.1",
        "TASK_MANAGER_PORT": str(container.port),
        "TASK_MANAGER_METRICS_PORT": str(container.metrics_port),
        "TASK_MANAGER_AUTH_TOKENS": f"{PRINCIPAL}:{container.token}",
        "TASK_MANAGER_DRAIN_SECONDS": str(DRAIN_SECONDS),
        **extra_env,
    }
    env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    data_mount = (
        ["--volume", f"{data_volume}:/var/lib/task-manager"]
        if data_volume
        else [
            "--tmpfs",
            "/var/lib/task-manager:rw,nosuid,nodev,size=64m,uid=10001,gid=10001,mode=0750",
        ]
    )
    docker(
        "run",
        "--detach",
        "--name",
        container.name,
        "--network",
        "host",
        # The chart's securityContext.
        "--read-only",
        "--user",
        UID_GID,
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        # The chart's writable mounts: an emptyDir for /tmp and the data volume.
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,size=64m",
        *data_mount,
        # Let the image's own HEALTHCHECK run often enough for a test to see it.
        "--health-interval",
        "1s",
        *env_args,
        image,
    )
    return container


def wait_until_ready(container: Container) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{container.base_url}/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if container.state()["status"] != "running":
            break
        time.sleep(0.2)
    pytest.fail(
        f"container {container.name} not ready within {START_TIMEOUT_S}s "
        f"(state {container.state()}); logs:\n{container.logs()}"
    )


def remove(container: Container) -> None:
    docker("rm", "--force", "--volumes", container.name, check=False)


@pytest.fixture(scope="session")
def image() -> str:
    """The image under test (tag or ID): $TASK_MANAGER_IMAGE (ci/test-image.sh sets the ID of
    the image it built), else built here."""
    if docker("info", check=False, timeout=30).returncode != 0:
        pytest.fail("no Docker engine answers; run ci/docker.sh (make test-image does)")
    name = os.environ.get("TASK_MANAGER_IMAGE")
    if not name:
        subprocess.run([str(REPO_ROOT / "ci" / "build-image.sh")], check=True, timeout=1800)
        name = (REPO_ROOT / "build" / "image.id").read_text().strip()
    if docker("image", "inspect", name, check=False).returncode != 0:
        pytest.fail(f"image {name} does not exist")
    return name


@pytest.fixture(scope="session")
def image_config(image: str) -> dict[str, Any]:
    """The image's config as `docker image inspect` reports it (User, Entrypoint, Labels, ...)."""
    config: dict[str, Any] = json.loads(
        docker("image", "inspect", "--format", "{{json .Config}}", image).stdout
    )
    return config


@pytest.fixture(scope="session")
def chart_user() -> str:
    """`uid:gid` of the chart's container securityContext."""
    return UID_GID


@pytest.fixture(scope="session")
def grace_period_s() -> int:
    """Seconds the chart leaves the container between SIGTERM and SIGKILL."""
    return GRACE_PERIOD_S


@pytest.fixture(scope="session")
def app_version() -> str:
    """The version the image must carry: the chart's appVersion, else the package version."""
    chart = REPO_ROOT / "Chart.yaml"
    if chart.exists():
        return str(yaml.safe_load(chart.read_text())["appVersion"])
    return str(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"])


@contextmanager
def ready_container(image: str, **kwargs: Any) -> Iterator[Container]:
    """A ready container (same arguments as run_container), removed when the block ends."""
    container = run_container(image, **kwargs)
    try:
        wait_until_ready(container)
        yield container
    finally:
        remove(container)


@pytest.fixture(scope="module")
def service(image: str) -> Iterator[Container]:
    """One ready container shared by the read-mostly tests of a module."""
    with ready_container(image) as container:
        yield container


@pytest.fixture
def data_volume() -> Iterator[str]:
    """A named Docker volume standing in for the chart's persistent data volume."""
    name = docker("volume", "create", f"task-manager-image-test-{uuid.uuid4().hex[:12]}").stdout
    name = name.strip()
    try:
        yield name
    finally:
        users = docker("ps", "--all", "--quiet", "--filter", f"volume={name}", check=False)
        for container_id in users.stdout.split():
            docker("rm", "--force", container_id, check=False)
        docker("volume", "rm", "--force", name, check=False)


@pytest.fixture
def start_service(image: str) -> Iterator[Callable[..., Container]]:
    """Starts ready containers on demand (same arguments as run_container); removes them all."""
    with ExitStack() as stack:

        def start(**kwargs: Any) -> Container:
            return stack.enter_context(ready_container(image, **kwargs))

        yield start


@pytest.fixture
def fresh_service(image: str) -> Iterator[Container]:
    """A ready container of its own, for a test that stops it."""
    with ready_container(image) as container:
        yield container
