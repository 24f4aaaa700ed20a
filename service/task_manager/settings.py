"""The single source of truth for configuration: every variable the service reads is a field here.

Settings are built once from the environment at start-up (``Settings.from_env()``) and passed down;
no other module reads ``os.environ``. docs/configuration.md is generated from the field list
(task_manager.configuration_doc) and a test fails when the committed copy is stale.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

ENV_PREFIX = "TASK_MANAGER_"

Port = Annotated[int, Field(ge=1, le=65535)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Sampler = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]

# Fields holding secrets: redacted by check-config and never logged.
SECRET_FIELDS = frozenset({"auth_tokens", "database_url", "otel_exporter_otlp_headers"})
# Secrets that can be read from a file instead (a mounted Kubernetes Secret, so the value shows up
# in neither `kubectl describe` nor the process environment): the secret's field -> its *_FILE
# field. The tokens have their own file format and reloading (auth_tokens_file, task_manager.auth).
SECRET_FILE_FIELDS = {
    "database_url": "database_url_file",
    "otel_exporter_otlp_headers": "otel_exporter_otlp_headers_file",
}


class ConfigError(Exception):
    """Invalid configuration; the message is one line naming the environment variable to fix."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


# The environment from_env() was given; the env source reads it instead of os.environ.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("environ", default=None)


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' env source (env_prefix, validation_alias, case-insensitive names) over
    an explicit mapping, so tests and the process environment take exactly the same path."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = parse_env_vars(
            environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


@contextmanager
def _reading(environ: Mapping[str, str]) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


class Settings(BaseSettings):
    """Service configuration read from TASK_MANAGER_* and the standard OTEL_* variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # In a container the API must listen on every interface (contract default).
    host: str = Field(
        default="0.0.0.0",  # noqa: S104  # nosec B104
        description="Address the HTTP API listens on.",
    )
    port: Port = Field(default=8080, description="Port of the HTTP API (/api/v1, /livez, /readyz).")
    metrics_port: Port = Field(
        default=9464, description="Separate port serving Prometheus metrics at /metrics."
    )
    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///var/task-manager.db"),
        description=(
            "SQLAlchemy URL: `sqlite:///relative.db`, `sqlite:////absolute.db` or "
            "`postgresql://user:pass@host/db` (driver psycopg 3). Treated as a secret."
        ),
    )
    database_url_file: Path | None = Field(
        default=None,
        description=(
            "File holding the database URL (e.g. a mounted Secret), read once at start; "
            "surrounding whitespace is ignored. Set it or `TASK_MANAGER_DATABASE_URL`, not both."
        ),
    )
    auth_enabled: bool = Field(
        default=True,
        description="Require a bearer token on /api/v1. Turning it off logs a warning at start.",
    )
    auth_tokens_file: Path | None = Field(
        default=None,
        description="File of `principal:token` lines (blank lines and `#` comments ignored).",
    )
    auth_tokens: SecretStr | None = Field(
        default=None,
        description="Comma-separated `principal:token` pairs, for development. A secret.",
    )
    log_level: LogLevel = Field(default="INFO", description="Minimum level of the JSON log lines.")
    drain_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="After SIGTERM, the longest time to let in-flight requests finish.",
    )
    threads: int = Field(default=8, ge=1, le=256, description="Waitress worker threads.")
    connection_limit: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description=(
            "Most open client connections; past it new connections wait until an idle one is "
            "closed (see TASK_MANAGER_IDLE_TIMEOUT_SECONDS)."
        ),
    )
    idle_timeout_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description=(
            "Seconds a connection may stay idle (keep-alive, or a client that stalls mid-request) "
            "before it is closed. Keep it above the idle timeout of a proxy in front."
        ),
    )
    migrate_on_start: bool = Field(
        default=True, description="Run the Alembic migrations to head before serving."
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=104_857_600,
        description="Largest accepted request body in bytes; larger bodies get 413.",
    )

    otel_service_name: str = Field(
        default="task-manager",
        validation_alias="OTEL_SERVICE_NAME",
        description="service.name resource attribute of spans.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description=(
            "Base URL of the OTLP receiver (e.g. `http://collector:4318`); over HTTP traces go "
            "to `<endpoint>/v1/traces`. Tracing is off when neither endpoint variable is set."
        ),
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        description="Full URL for traces; overrides OTEL_EXPORTER_OTLP_ENDPOINT.",
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        default="http/protobuf",
        validation_alias="OTEL_EXPORTER_OTLP_PROTOCOL",
        description=(
            "OTLP transport: `http/protobuf` (port 4318) or `grpc` (port 4317; the endpoint is "
            "then used as given, with no `/v1/traces` path)."
        ),
    )
    otel_exporter_otlp_headers: SecretStr | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_HEADERS",
        description="`key=value,...` headers sent with each export. Treated as a secret.",
    )
    otel_exporter_otlp_headers_file: Path | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_HEADERS_FILE",
        description=(
            "File holding the `key=value,...` export headers (e.g. a mounted Secret), read once "
            "at start; the service's own addition to the OTEL_* variables. Set it or "
            "`OTEL_EXPORTER_OTLP_HEADERS`, not both."
        ),
    )
    otel_traces_sampler: Sampler = Field(
        default="parentbased_always_on",
        validation_alias="OTEL_TRACES_SAMPLER",
        description="Sampler name as in the OpenTelemetry specification.",
    )
    otel_traces_sampler_arg: float | None = Field(
        default=None,
        ge=0,
        le=1,
        validation_alias="OTEL_TRACES_SAMPLER_ARG",
        description="Ratio for the `traceidratio` samplers (default 1.0).",
    )
    otel_resource_attributes: str | None = Field(
        default=None,
        validation_alias="OTEL_RESOURCE_ATTRIBUTES",
        description="Extra resource attributes, `key=value,...`.",
    )
    # Lower than the SDK's 5000 ms and 512 spans: spans wait less in memory (less RSS under load,
    # bench/README.md) and reach the collector sooner.
    otel_bsp_schedule_delay: int = Field(
        default=1000,
        ge=1,
        le=60_000,
        validation_alias="OTEL_BSP_SCHEDULE_DELAY",
        description="Milliseconds between span exports (the SDK's default is 5000).",
    )
    otel_bsp_max_export_batch_size: int = Field(
        default=128,
        ge=1,
        le=2048,
        validation_alias="OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        description="Most spans per export (the SDK's default is 512; the queue holds 2048).",
    )
    otel_sdk_disabled: bool = Field(
        default=False,
        validation_alias="OTEL_SDK_DISABLED",
        description="`true` turns tracing off even when an endpoint is set.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the environment: no .env file or secrets directory is ever consulted.
        environ = _ENVIRON.get()
        if environ is not None:
            env_settings = _EnvironSource(settings_cls, environ)
        return (init_settings, env_settings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("otel_traces_sampler", "otel_exporter_otlp_protocol", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "otel_exporter_otlp_endpoint",
        "otel_exporter_otlp_traces_endpoint",
        "otel_resource_attributes",
        "auth_tokens_file",
        "database_url_file",
        "otel_exporter_otlp_headers_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """Puts the content of each *_FILE in place of its secret, before validation.

        A missing, unreadable or empty file raises ConfigError (not a ValueError, so pydantic
        lets it through) naming the *_FILE variable."""
        if not isinstance(data, dict):
            return data
        for field, file_field in SECRET_FILE_FIELDS.items():
            path = data.get(_input_key(file_field))
            if not isinstance(path, str | Path) or not str(path).strip():
                continue
            variable = environment_variable(file_field)
            if data.get(_input_key(field)) not in (None, ""):
                raise ConfigError(
                    variable, f"set either it or {environment_variable(field)}, not both"
                )
            data = {**data, _input_key(field): _read_secret_file(variable, Path(path))}
        return data

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Builds settings from ``environ`` (default: the process environment).

        Raises ConfigError naming the first bad variable.
        """
        try:
            if environ is None:
                return cls()
            with _reading(environ):
                return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = str(error["loc"][0]) if error["loc"] else ""
            variable = loc if loc in known_environment_variables() else environment_variable(loc)
            raise ConfigError(variable, error["msg"]) from None

    @property
    def traces_endpoint(self) -> str | None:
        """The URL traces are exported to, or None when tracing is off."""
        if self.otel_sdk_disabled:
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint and self.otel_exporter_otlp_protocol == "grpc":
            return self.otel_exporter_otlp_endpoint
        if self.otel_exporter_otlp_endpoint:
            # As the OTLP exporter resolves it: one trailing slash dropped.
            return self.otel_exporter_otlp_endpoint.removesuffix("/") + "/v1/traces"
        return None

    def redacted(self) -> dict[str, str]:
        """Effective configuration keyed by environment variable, secrets redacted."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                shown = ""
            elif name in SECRET_FIELDS or isinstance(value, SecretStr):
                shown = _redact(name, value.get_secret_value())
            else:
                shown = str(value).lower() if isinstance(value, bool) else str(value)
            out[environment_variable(name)] = shown
        return out


def _input_key(field: str) -> str:
    """Key of ``field`` in the env source's output: its alias, or its name under env_prefix."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field


def _read_secret_file(variable: str, path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(variable, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(variable, f"{path} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(variable, f"{path} is empty")
    return secret


def _redact(name: str, secret: str) -> str:
    if name == "database_url":
        # Keep the scheme and host so an operator can see where it points.
        scheme, sep, rest = secret.partition("://")
        if not sep:
            return "<redacted>"
        _creds, at, location = rest.rpartition("@")
        return f"{scheme}://{'<redacted>@' if at else ''}{location}"
    return "<redacted>" if secret else ""


def environment_variable(field: str) -> str:
    """Name of the environment variable that sets ``field``."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    return ENV_PREFIX + field.upper()


def known_environment_variables() -> frozenset[str]:
    """Every environment variable the service reads (TASK_MANAGER_* and the OTEL_* it honours)."""
    return frozenset(environment_variable(field) for field in Settings.model_fields)
