"""Fixtures of the service tier: real `task-manager serve` processes on free loopback ports.

Every server is started as a subprocess exactly as the image runs it and is always stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
TASK_MANAGER = str(Path(sys.executable).with_name("task-manager"))
START_TIMEOUT = 60.0  # the CI machine is shared and can be very slow to import

ALICE_TOKEN = "alice-secret-token-1"
BOB_TOKEN = "bob-secret-token-22"
TOKENS = f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A running `task-manager serve` process."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"service not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


ServiceFactory = Callable[..., Service]


def start_service(tmp: Path, env: Mapping[str, str] | None = None, *, wait: bool = True) -> Service:
    port, metrics_port = free_port(), free_port()
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(tmp)),
        "TASK_MANAGER_HOST": "127.0.0.1",
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
        "TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp}/tasks.db",
        "TASK_MANAGER_AUTH_TOKENS": TOKENS,
        "TASK_MANAGER_DRAIN_SECONDS": "5",
        **(env or {}),
    }
    log_path = tmp / f"service-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TASK_MANAGER, "serve"],
            env=full_env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, port, metrics_port, log_path, full_env)
    if wait:
        try:
            service.wait_ready()
        except Exception:
            service.stop(signal.SIGKILL)
            raise
    return service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Starts services with extra environment; all are stopped at the end of the test."""
    started: list[Service] = []

    def factory(env: Mapping[str, str] | None = None, *, wait: bool = True) -> Service:
        service = start_service(tmp_path, env, wait=wait)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One shared service on SQLite for the API tests (each test uses its own data)."""
    service = start_service(tmp_path_factory.mktemp("sqlite-service"))
    yield service
    service.stop()


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASK_MANAGER, *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
