"""Fixtures of the service tier: real `task-manager serve` processes on free loopback ports.

Every server is started as a subprocess exactly as the image runs it and is always stopped. The
helpers behind them live in tests/support (service.py, client.py).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from support.client import Client
from support.postgres import Postgres, running_postgres
from support.service import ALICE_TOKEN, BOB_TOKEN, Service, ServiceFactory, start_service


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


@pytest.fixture
def alice(api: Service) -> Client:
    return Client(api.url, ALICE_TOKEN)


@pytest.fixture
def bob(api: Service) -> Client:
    return Client(api.url, BOB_TOKEN)
