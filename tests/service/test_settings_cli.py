"""The settings contract and the `task-manager` subcommands other than serve."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, inspect
from support.postgres import Postgres
from support.service import ServiceFactory, run_cli
from task_manager.settings import ConfigError, Settings, known_environment_variables

CONTRACT = {
    "TASK_MANAGER_HOST",
    "TASK_MANAGER_PORT",
    "TASK_MANAGER_METRICS_PORT",
    "TASK_MANAGER_DATABASE_URL",
    "TASK_MANAGER_AUTH_ENABLED",
    "TASK_MANAGER_AUTH_TOKENS_FILE",
    "TASK_MANAGER_AUTH_TOKENS",
    "TASK_MANAGER_LOG_LEVEL",
    "TASK_MANAGER_DRAIN_SECONDS",
    "TASK_MANAGER_THREADS",
    "TASK_MANAGER_MIGRATE_ON_START",
    "TASK_MANAGER_MAX_BODY_BYTES",
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
}


def test_known_environment_variables_cover_the_shared_contract() -> None:
    assert known_environment_variables() >= CONTRACT
    assert all(v.startswith(("TASK_MANAGER_", "OTEL_")) for v in known_environment_variables())


def test_defaults_match_the_contract() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 8080, 9464)
    assert settings.database_url.get_secret_value() == "sqlite:///var/task-manager.db"
    assert settings.auth_enabled is True
    assert settings.migrate_on_start is True
    assert (settings.drain_seconds, settings.threads) == (10.0, 8)
    assert settings.otel_exporter_otlp_protocol == "http/protobuf"
    assert settings.traces_endpoint is None


def test_settings_ignore_the_process_environment_when_given_a_mapping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASK_MANAGER_PORT", "1234")
    assert Settings.from_env({}).port == 8080
    assert Settings.from_env().port == 1234


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TASK_MANAGER_PORT", "eighty"),
        ("TASK_MANAGER_METRICS_PORT", "70000"),
        ("TASK_MANAGER_AUTH_ENABLED", "maybe"),
        ("TASK_MANAGER_LOG_LEVEL", "loud"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many"),
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable


def test_check_config_prints_effective_values_with_secrets_redacted(tmp_path: Path) -> None:
    result = run_cli(
        "check-config",
        env={
            "TASK_MANAGER_DATABASE_URL": "postgresql://app:hunter2@db.internal:5432/tasks",
            "TASK_MANAGER_AUTH_TOKENS": "alice:super-secret-token",
            "TASK_MANAGER_THREADS": "4",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["TASK_MANAGER_THREADS"] == "4"
    assert lines["TASK_MANAGER_DATABASE_URL"] == "postgresql://<redacted>@db.internal:5432/tasks"
    assert lines["TASK_MANAGER_AUTH_TOKENS"] == "<redacted>"
    assert "hunter2" not in result.stdout + result.stderr
    assert "super-secret-token" not in result.stdout + result.stderr
    assert set(lines) == known_environment_variables()


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_invalid_configuration_exits_2_with_one_line_naming_the_variable(
    tmp_path: Path, command: str
) -> None:
    result = run_cli(command, env={"TASK_MANAGER_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("task-manager: invalid configuration: TASK_MANAGER_PORT:")


def test_auth_enabled_without_any_token_is_a_configuration_error(tmp_path: Path) -> None:
    result = run_cli("check-config", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "TASK_MANAGER_AUTH_TOKENS_FILE" in result.stderr


def test_unreadable_tokens_file_is_a_configuration_error(tmp_path: Path) -> None:
    result = run_cli(
        "check-config",
        env={"TASK_MANAGER_AUTH_TOKENS_FILE": str(tmp_path / "missing")},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "TASK_MANAGER_AUTH_TOKENS_FILE: cannot read" in result.stderr


def test_migrate_creates_the_schema_on_sqlite(tmp_path: Path) -> None:
    result = run_cli(
        "migrate", env={"TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    assert {"tasks", "task_labels", "idempotency_keys", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_migrate_creates_the_schema_on_postgresql(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.create_database()
    for _ in range(2):  # a second run (hook Job retried) is a no-op
        result = run_cli("migrate", env={"TASK_MANAGER_DATABASE_URL": url}, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    assert {"tasks", "task_labels", "idempotency_keys"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_serve_without_migrate_on_start_is_not_ready_until_migrated(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    service = service_factory(
        {
            "TASK_MANAGER_MIGRATE_ON_START": "false",
            "TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp_path}/late.db",
        },
        wait=False,
    )
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        try:
            status = requests.get(service.url + "/readyz", timeout=2).status_code
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    assert status == 503
    result = run_cli(
        "migrate", env={"TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp_path}/late.db"}, cwd=tmp_path
    )
    assert result.returncode == 0
    service.wait_ready(30)


def test_serve_stops_with_one_line_when_the_schema_migration_fails(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    database = tmp_path / "unknown-revision.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('not-a-revision')")
    service = service_factory({"TASK_MANAGER_DATABASE_URL": f"sqlite:///{database}"}, wait=False)
    assert service.process.wait(60) == 1
    log = service.log()
    assert "task-manager: the schema migration failed (child exit code 1); see its log" in log
    failure = [json.loads(line) for line in log.splitlines() if '"schema migration failed"' in line]
    assert len(failure) == 1
    assert "not-a-revision" in failure[0]["exc_info"]


def test_migrate_that_fails_exits_1_with_the_error_as_one_json_line(tmp_path: Path) -> None:
    database = tmp_path / "unknown-revision.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('not-a-revision')")
    result = run_cli(
        "migrate", env={"TASK_MANAGER_DATABASE_URL": f"sqlite:///{database}"}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    failure = [line for line in lines if line["message"] == "schema migration failed"]
    assert len(failure) == 1
    assert failure[0]["level"] == "ERROR"
    assert "not-a-revision" in failure[0]["exc_info"]
