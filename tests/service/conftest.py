"""Fixtures of the service tier, on two levels:

- the app in-process (`create_app(settings)` behind Flask's test client): `app`, `alice`, `bob`
  and `app_factory` (an app of its own with extra environment), for what needs no real process
  (validation, errors, ETags, cursors, merge patch, auth, OpenAPI);
- real `task-manager serve` processes on free loopback ports, started exactly as the image runs
  them and always stopped: `api`, `http_alice`, `service_factory`, for what needs one (waitress,
  signals, ports, the metrics server, logs, concurrent requests, the CLI).

Every API fixture runs on SQLite and PostgreSQL. The helpers behind them live in tests/support
(app.py, service.py, client.py).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.app import AppClient, AppFactory, in_process_app
from support.client import Client
from support.postgres import Postgres, running_postgres
from support.service import ALICE_TOKEN, BOB_TOKEN, Service, ServiceFactory, start_service
from task_manager.runtime import runtime


def _on_each_database(request: pytest.FixtureRequest, kind: str) -> Any:
    """The session fixture `sqlite_<kind>` or `postgres_<kind>` for request.param."""
    prefix = "sqlite" if request.param == "sqlite" else "postgres"
    return request.getfixturevalue(f"{prefix}_{kind}")


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
    """The served API on each database."""
    return _on_each_database(request, "service")  # type: ignore[no-any-return]


@pytest.fixture
def http_alice(api: Service) -> Client:
    return Client(api.url, ALICE_TOKEN)


# --- In-process app --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = in_process_app(f"sqlite:///{tmp_path_factory.mktemp('sqlite-app')}/tasks.db")
    yield app
    runtime(app).repository.engine.dispose()


@pytest.fixture(scope="session")
def postgres_app(postgres: Postgres) -> Iterator[Flask]:
    app = in_process_app(postgres.create_database())
    yield app
    runtime(app).repository.engine.dispose()


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[AppFactory]:
    """Builds in-process apps with extra environment, each on a new SQLite database of this test;
    their engines are disposed at the end of the test."""
    built: list[Flask] = []

    def factory(env: Mapping[str, str]) -> Flask:
        app = in_process_app(f"sqlite:///{tmp_path}/app-{len(built)}.db", env)
        built.append(app)
        return app

    yield factory
    for app in built:
        runtime(app).repository.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Flask:
    """The app in-process on each database: every API test runs against SQLite and PostgreSQL."""
    return _on_each_database(request, "app")  # type: ignore[no-any-return]


@pytest.fixture
def alice(app: Flask) -> AppClient:
    return AppClient(app, ALICE_TOKEN)


@pytest.fixture
def bob(app: Flask) -> AppClient:
    return AppClient(app, BOB_TOKEN)
