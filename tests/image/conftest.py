"""Image tier fixtures: the built image, run under the chart's securityContext on loopback ports
(the helpers behind them live in tests/support/container.py). Containers are always removed, pass
or fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import yaml
from support.container import DRAIN_SECONDS, UID_GID, Container, docker, ready_container
from support.paths import REPO_ROOT

# terminationGracePeriodSeconds is preStopSleepSeconds + drainSeconds + 5 and the preStop sleep runs
# before SIGTERM, so this is what the container has between SIGTERM and SIGKILL.
GRACE_PERIOD_S = DRAIN_SECONDS + 5


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
