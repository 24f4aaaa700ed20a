"""OpenTelemetry tracing configured only from the OTEL_* settings; off when no endpoint is set."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from sqlalchemy import Engine

from task_manager.settings import Settings

log = logging.getLogger(__name__)

# Probes and metrics are never traced (comma-separated regexes matched against the URL).
EXCLUDED_URLS = "/livez,/readyz,/metrics"


def _pairs(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def _sampler(settings: Settings) -> Sampler:
    ratio = 1.0 if settings.otel_traces_sampler_arg is None else settings.otel_traces_sampler_arg
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    return samplers[settings.otel_traces_sampler]


@dataclass
class Tracing:
    """Handle to flush and stop tracing at shutdown; a no-op when tracing is off."""

    provider: TracerProvider | None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.force_flush(timeout_millis=5000)
            self.provider.shutdown()


def setup_tracing(settings: Settings, app: Flask, engine: Engine, version: str) -> Tracing:
    endpoint = settings.traces_endpoint
    if endpoint is None:
        log.info("tracing off: no OTEL_EXPORTER_OTLP_ENDPOINT set")
        return Tracing(provider=None)
    # Imported here so that a process without tracing never loads the exporter (start-up time).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    attributes: dict[str, str] = _pairs(settings.otel_resource_attributes)
    attributes[SERVICE_NAME] = settings.otel_service_name
    attributes.setdefault(SERVICE_VERSION, version)
    provider = TracerProvider(resource=Resource(attributes), sampler=_sampler(settings))
    headers = _pairs(
        settings.otel_exporter_otlp_headers.get_secret_value()
        if settings.otel_exporter_otlp_headers
        else None
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers or None))
    )
    FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
        app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS
    )
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider)
    log.info(
        "tracing on",
        extra={"endpoint": endpoint, "sampler": settings.otel_traces_sampler},
    )
    return Tracing(provider=provider)
