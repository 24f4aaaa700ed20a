"""The benchmark's floor: the dict baseline plus the service's own per-request layers, no storage.

The baseline app with exactly what the service wraps around every request, taken from the service's
modules and configured from the same environment: the OpenTelemetry Flask instrumentation (the
bench samples 10%), the Prometheus request histogram and in-flight gauge, the request id and JSON
access line, bearer-token auth, the problem+json error handlers and the server's interpreter
settings (GC freeze, GIL switch interval). No database, no validation. The gap between this and the
baseline is what those layers cost; the service cannot beat it.

Usage: python bench/floor_app.py PORT THREADS (with the service's TASK_MANAGER_* and OTEL_* env).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from sqlalchemy import create_engine
from task_manager import __version__, auth, errors, metrics
from task_manager import logging as logs
from task_manager.settings import Settings
from task_manager.tracing import setup_tracing

# In the order the service's app factory installs them.
LAYERS = ("tracing", "access log", "metrics", "auth")


def install_layers(app: Flask, settings: Settings, layers: Iterable[str] = LAYERS) -> None:
    chosen = set(layers)
    logs.configure_logging(settings.log_level)
    if "tracing" in chosen:
        # The SQLAlchemy instrumentation needs an engine; this one is never used.
        setup_tracing(settings, app, create_engine("sqlite://"), __version__)
    if "access log" in chosen:
        logs.instrument(app)
    if "metrics" in chosen:
        metrics.Metrics(version=__version__, revision="floor").instrument(app)
    if "auth" in chosen:
        auth.install(app, settings, auth.TokenStore.from_settings(settings))
    errors.register_error_handlers(app)


def main() -> None:
    from baseline_app import app, serve_from_argv
    from task_manager.server import tune_interpreter

    install_layers(app, Settings.from_env())
    tune_interpreter()  # as the service's server does
    serve_from_argv(app, "floor")


if __name__ == "__main__":
    main()
