"""`make up` as a newcomer runs it: the chart installed, and each printed command works.

Runs on the local cluster only (make up builds that cluster; on kind there is nothing to bring up).
Local ports of the printed port-forwards are chosen free through UP_*_PORT, so the test does not
depend on 8080, 9464 and 16686 being free; everything else is the documented default.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.net import free_ports

from .conftest import REPO_ROOT, Cluster, Helm

NAMESPACE, RELEASE = "task-manager", "tm"  # ci/up.sh's defaults

pytestmark = pytest.mark.skipif(
    os.environ.get("USE_EXISTING_CLUSTER") == "1", reason="make up builds its own local cluster"
)


@dataclass(frozen=True)
class Up:
    output: str
    seconds: float
    env: dict[str, str]

    def commands(self) -> list[str]:
        """The printed commands: the indented lines of its closing text."""
        text = self.output[self.output.index("The chart runs on a real local node") :]
        return [line.strip() for line in text.splitlines() if line.startswith("  ")]


def make_up(env: dict[str, str]) -> Up:
    started = time.monotonic()
    run = subprocess.run(
        ["make", "up"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return Up(output=run.stdout + run.stderr, seconds=time.monotonic() - started, env=env)


@pytest.fixture(scope="module")
def up(cluster: Cluster) -> Up:
    assert cluster.local
    ports = free_ports(3)
    env = {
        **os.environ,
        **dict(zip(("UP_API_PORT", "UP_METRICS_PORT", "UP_JAEGER_PORT"), map(str, ports))),
    }
    env.pop("KUBECONFIG", None)  # what make up prints must be enough
    return make_up(env)


def _bash(up: Up, command: str) -> list[str]:
    """bash running command after the printed exports, as in the shell the text speaks to."""
    exports = "\n".join(c for c in up.commands() if c.startswith("export "))
    return ["bash", "-euo", "pipefail", "-c", f"{exports}\n{command}"]


def _shell(up: Up, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _bash(up, command), env=up.env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def forwarded(up: Up) -> Iterator[None]:
    """Every printed port-forward, started in the background as the text says."""
    forwards = [c for c in up.commands() if " port-forward " in c]
    assert len(forwards) == 3, up.commands()
    processes = [
        subprocess.Popen(
            _bash(up, f"exec {command}"),
            env=up.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in forwards
    ]
    try:
        for command in forwards:
            port = int(re.search(r" (\d+):\d+$", command)[1])  # type: ignore[index]
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{command} does not listen"
                    time.sleep(0.5)
        yield
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _printed(up: Up, starts: str) -> str:
    found = [c for c in up.commands() if c.startswith(starts)]
    assert len(found) == 1, (starts, up.commands())
    return found[0]


def test_make_up_installs_the_chart_and_passes_helm_test(up: Up, helm: Helm) -> None:
    history = helm.history(RELEASE, NAMESPACE)
    assert history[-1]["status"] == "deployed", history
    assert "helm test tm" in up.output, up.output[-2000:]


def test_the_printed_api_commands_work_as_printed(up: Up, forwarded: None) -> None:
    token = _shell(up, _printed(up, "export TOKEN=") + '\nprintf %s "$TOKEN"')
    assert token.returncode == 0, token.stderr
    assert token.stdout, "the printed TOKEN command yields no token"
    listed = _shell(
        up, _printed(up, "export TOKEN=") + "\n" + _printed(up, 'curl -H "Authorization')
    )
    assert listed.returncode == 0, listed.stderr
    assert "items" in json.loads(listed.stdout), listed.stdout


def test_the_printed_metrics_and_trace_commands_work_as_printed(up: Up, forwarded: None) -> None:
    metrics = _shell(up, _printed(up, "curl http://127.0.0.1:"))
    assert metrics.returncode == 0, metrics.stderr
    assert "http_server_request_duration_seconds_count" in metrics.stdout, metrics.stdout[:2000]

    traces_command = _printed(up, "curl 'http://127.0.0.1:")
    deadline = time.monotonic() + 90
    while True:  # the API call of the previous test (and helm test's) reach Jaeger within seconds
        traces = _shell(up, traces_command)
        assert traces.returncode == 0, traces.stderr
        if json.loads(traces.stdout).get("data") or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert json.loads(traces.stdout)["data"], traces.stdout


def test_make_up_again_changes_nothing_and_is_fast(up: Up, helm: Helm) -> None:
    before = helm.history(RELEASE, NAMESPACE)
    again = make_up(up.env)
    assert "is up to date" in again.output, again.output[-2000:]
    assert helm.history(RELEASE, NAMESPACE) == before
    assert again.seconds < up.seconds, (again.seconds, up.seconds)
