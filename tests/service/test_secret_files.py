"""Secrets read from files (*_FILE, e.g. a mounted Kubernetes Secret) instead of the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.service import run_cli
from task_manager.settings import SECRET_FILE_FIELDS, ConfigError, Settings, environment_variable

URL = "postgresql://app:hunter2@db.internal:5432/tasks"

# Each *_FILE variable and the secret it stands for.
FILE_VARIABLES = [
    (environment_variable(file_field), environment_variable(field))
    for field, file_field in SECRET_FILE_FIELDS.items()
]


def test_every_secret_but_the_tokens_has_a_file_variant() -> None:
    secrets = {
        name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
    }
    # The tokens' file variant is TASK_MANAGER_AUTH_TOKENS_FILE (lines, reloaded on change).
    assert secrets - {"auth_tokens"} == set(SECRET_FILE_FIELDS)
    assert [v for v, _ in FILE_VARIABLES] == [
        "TASK_MANAGER_DATABASE_URL_FILE",
        "OTEL_EXPORTER_OTLP_HEADERS_FILE",
    ]


def test_the_database_url_is_read_from_its_file_without_the_trailing_newline(
    tmp_path: Path,
) -> None:
    path = tmp_path / "database-url"
    path.write_text(URL + "\n")
    settings = Settings.from_env({"TASK_MANAGER_DATABASE_URL_FILE": str(path)})
    assert settings.database_url.get_secret_value() == URL


def test_the_export_headers_are_read_from_their_file(tmp_path: Path) -> None:
    path = tmp_path / "headers"
    path.write_text("x-api-key=s3cret%20key\n")
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_HEADERS_FILE": str(path)})
    assert settings.otel_exporter_otlp_headers is not None
    assert settings.otel_exporter_otlp_headers.get_secret_value() == "x-api-key=s3cret%20key"


@pytest.mark.parametrize(("variable", "secret"), FILE_VARIABLES)
def test_a_missing_file_names_the_file_variable(tmp_path: Path, variable: str, secret: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: str(tmp_path / "missing")})
    assert raised.value.variable == variable
    missing = tmp_path / "missing"
    assert str(raised.value) == f"{variable}: cannot read {missing}: No such file or directory"


@pytest.mark.parametrize(("variable", "secret"), FILE_VARIABLES)
def test_an_empty_file_names_the_file_variable(tmp_path: Path, variable: str, secret: str) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: str(path)})
    assert str(raised.value) == f"{variable}: {path} is empty"


@pytest.mark.parametrize(("variable", "secret"), FILE_VARIABLES)
def test_the_value_and_its_file_together_are_refused(
    tmp_path: Path, variable: str, secret: str
) -> None:
    path = tmp_path / "secret"
    path.write_text("a=b")
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: str(path), secret: "a=c"})
    assert str(raised.value) == f"{variable}: set either it or {secret}, not both"


def test_check_config_names_the_bad_file_in_one_line_and_exits_2(tmp_path: Path) -> None:
    result = run_cli(
        "check-config",
        env={"TASK_MANAGER_DATABASE_URL_FILE": str(tmp_path / "missing")},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "task-manager: invalid configuration: TASK_MANAGER_DATABASE_URL_FILE: cannot read "
        f"{tmp_path}/missing: No such file or directory\n"
    )


def test_check_config_redacts_a_secret_read_from_a_file(tmp_path: Path) -> None:
    url_file, headers_file = tmp_path / "url", tmp_path / "headers"
    url_file.write_text(URL)
    headers_file.write_text("x-api-key=hunter3")
    result = run_cli(
        "check-config",
        env={
            "TASK_MANAGER_DATABASE_URL_FILE": str(url_file),
            "OTEL_EXPORTER_OTLP_HEADERS_FILE": str(headers_file),
            "TASK_MANAGER_AUTH_TOKENS": "alice:super-secret-token",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["TASK_MANAGER_DATABASE_URL"] == "postgresql://<redacted>@db.internal:5432/tasks"
    assert lines["TASK_MANAGER_DATABASE_URL_FILE"] == str(url_file)
    assert lines["OTEL_EXPORTER_OTLP_HEADERS"] == "<redacted>"
    assert "hunter2" not in result.stdout
    assert "hunter3" not in result.stdout


def test_migrate_reads_the_database_url_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "database-url"
    path.write_text(f"sqlite:///{tmp_path}/from-file.db\n")
    result = run_cli("migrate", env={"TASK_MANAGER_DATABASE_URL_FILE": str(path)}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "from-file.db").exists()
