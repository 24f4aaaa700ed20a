"""The benchmark's "seed as written": the dict baseline with the seed report's observability stack.

What the seed's own in-memory app carried, set up the way each library's documentation shows it:
prometheus_flask_exporter's PrometheusMetrics on the app, the OpenTelemetry Flask instrumentation
with the SDK's console exporter behind a batch processor at 100% sampling (the SDK's default
sampler), and one python-json-logger line per operation written straight to stdout. No auth, no
database. The service must beat this peer: it is what a user would otherwise run.

Usage: python bench/seed_app.py PORT THREADS
"""

from __future__ import annotations

import logging
import sys

from flask import Flask, Response, request
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from prometheus_flask_exporter import PrometheusMetrics
from pythonjsonlogger.json import JsonFormatter

log = logging.getLogger("seed")


def install_seed_stack(app: Flask) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    FlaskInstrumentor().instrument_app(app)  # type: ignore[no-untyped-call]
    PrometheusMetrics(app)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    @app.after_request
    def _log_operation(response: Response) -> Response:
        if request.path != "/readyz":
            log.info(
                "operation",
                extra={"method": request.method, "path": request.path,
                       "status": response.status_code},
            )  # fmt: skip
        return response


def main() -> None:
    from baseline_app import app, serve_from_argv

    install_seed_stack(app)
    serve_from_argv(app, "seed")


if __name__ == "__main__":
    main()
