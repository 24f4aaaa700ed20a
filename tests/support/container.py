"""task-manager containers of the built image, run under the chart's securityContext on loopback
ports (the image tier's helpers; its conftest keeps the fixtures).

Every container is started with the flags that mirror the chart's pod and container
securityContext (read-only root, UID/GID from values.yaml, no capabilities, no privilege
escalation) and the chart's writable mounts (/tmp and /var/lib/task-manager as tmpfs), on the host
network with the service bound to 127.0.0.1 on free ports.
"""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
import yaml

from support.net import LoopbackServer, free_ports
from support.paths import REPO_ROOT

# The chart's settings these containers mirror, from its default values.
CHART_VALUES = yaml.safe_load((REPO_ROOT / "values.yaml").read_text())
UID_GID = "{runAsUser}:{runAsGroup}".format(**CHART_VALUES["securityContext"])
DRAIN_SECONDS = int(CHART_VALUES["config"]["drainSeconds"])
PRINCIPAL = "image-test"
START_TIMEOUT_S = 60.0


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=check, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Container(LoopbackServer):
    """A running task-manager container and what a test needs to talk to it."""

    name: str = field(kw_only=True)
    token: str = field(kw_only=True)
    extra_env: dict[str, str] = field(default_factory=dict)

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
        port=port,
        name=f"task-manager-image-test-{uuid.uuid4().hex[:12]}",
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
            if requests.get(f"{container.url}/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if container.state()["status"] != "running":
            break
        time.sleep(0.2)
    raise RuntimeError(
        f"container {container.name} not ready within {START_TIMEOUT_S}s "
        f"(state {container.state()}); logs:\n{container.logs()}"
    )


def remove(container: Container) -> None:
    docker("rm", "--force", "--volumes", container.name, check=False)


@contextmanager
def ready_container(image: str, **kwargs: Any) -> Iterator[Container]:
    """A ready container (same arguments as run_container), removed when the block ends."""
    container = run_container(image, **kwargs)
    try:
        wait_until_ready(container)
        yield container
    finally:
        remove(container)
