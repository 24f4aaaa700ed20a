"""Fixtures of the service tier: real `task-manager serve` processes on free loopback ports.

Every server is started as a subprocess exactly as the image runs it and is always stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from support.net import free_ports
from support.postgres import Postgres, running_postgres
from task_manager.logging import LOG_FLUSH_INTERVAL_S

REPO_ROOT = Path(__file__).resolve().parents[2]
TASK_MANAGER = str(Path(sys.executable).with_name("task-manager"))
START_TIMEOUT = 60.0  # the CI machine is shared and can be very slow to import

ALICE_TOKEN = "alice-secret-token-1"
BOB_TOKEN = "bob-secret-token-22"
TOKENS = f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}"


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
        """The output so far, once the service's log buffer has been flushed (a running service
        writes its lines every LOG_FLUSH_INTERVAL_S)."""
        if self.process.poll() is None:
            size, deadline = -1, time.monotonic() + 10
            while time.monotonic() < deadline and self.log_path.stat().st_size != size:
                size = self.log_path.stat().st_size
                time.sleep(3 * LOG_FLUSH_INTERVAL_S)
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


def base_env() -> dict[str, str]:
    """What every service process inherits: PATH, HOME and coverage's subprocess settings."""
    inherited = {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **inherited}


def start_service(tmp: Path, env: Mapping[str, str] | None = None, *, wait: bool = True) -> Service:
    port, metrics_port = free_ports(2)
    full_env = {
        **base_env(),
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
        env={**base_env(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_service(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One shared service on PostgreSQL for the API tests."""
    service = start_service(
        tmp_path_factory.mktemp("pg-service"),
        {"TASK_MANAGER_DATABASE_URL": postgres.create_database()},
    )
    yield service
    service.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest) -> Service:
    """The API on each database: every API test runs against SQLite and PostgreSQL."""
    name = "sqlite_service" if request.param == "sqlite" else "postgres_service"
    service: Service = request.getfixturevalue(name)
    return service


# --- HTTP client -----------------------------------------------------------------------------


class Client:
    """requests against one service as one principal."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base_url + path, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, **fields: object) -> dict[str, object]:
        response = self.post("/api/v1/tasks", json={"title": "a task", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, object] = response.json()
        return body


@pytest.fixture
def alice(api: Service) -> Client:
    return Client(api.url, ALICE_TOKEN)


@pytest.fixture
def bob(api: Service) -> Client:
    return Client(api.url, BOB_TOKEN)


def unique_label() -> str:
    """A label no other test uses, to scope list queries to one test's tasks."""
    return "t-" + uuid.uuid4().hex[:12]
