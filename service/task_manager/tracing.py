"""OpenTelemetry tracing, off when no OTLP endpoint is set.

Settings validates and documents the OTEL_* variables (check-config fails on a bad one); the SDK
reads them itself: Resource.create() the resource attributes and service name, TracerProvider the
sampler, the OTLP exporter (task_manager.otlp) its endpoint, BatchSpanProcessor the OTEL_BSP_* it
is not given here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from sqlalchemy import Engine

from task_manager.otlp import span_exporter
from task_manager.settings import Settings

log = logging.getLogger(__name__)

# Probes and metrics are never traced (paths compared without a trailing slash).
EXCLUDED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


class _NoRootClientSpans(Sampler):
    """Drops CLIENT spans that start a trace: SQL run outside a request (readiness checks, the
    task-count gauge at a scrape, start-up) would otherwise arrive as one orphan trace each."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoRootClientSpans{{{self._delegate.get_description()}}}"


def _environment_sampler() -> Sampler:
    """The sampler named by OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as the SDK builds it.

    A TracerProvider given no sampler picks it from the environment; its helper for that is
    private, so the public door is a provider made only to read its ``sampler``."""
    return TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False).sampler


class _HashedOnce(Resource):
    """A Resource whose hash is computed once. The OTLP encoder groups every span of a batch by
    its resource, and Resource.__hash__ serialises the attributes to JSON each time: about 5 of
    the 33 µs it took to encode a span (bench/README.md). A Resource never changes after it is
    made (its attributes are immutable), so the first answer stays right."""

    _hash: int | None = None

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = super().__hash__()
        return self._hash


def _resource(settings: Settings, version: str) -> Resource:
    """Resource.create() reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME. The service name
    is passed as well because its default here is ``task-manager``, not ``unknown_service``; the
    version is only a default, which OTEL_RESOURCE_ATTRIBUTES may override."""
    detected = Resource.create({SERVICE_NAME: settings.otel_service_name})
    merged = Resource({SERVICE_VERSION: version}).merge(detected)
    return _HashedOnce(merged.attributes, merged.schema_url)


class ExporterOnFirstExport(SpanExporter):
    """Builds the exporter when the batch processor's worker first exports, not at start-up.

    Importing the OTLP exporter (requests, urllib3, protobuf) was a large share of the service's
    start (bench/README.md), and nothing needs it before the first batch, a schedule delay after
    the first sampled request. The settings it reads were validated at start-up (Settings)."""

    def __init__(self, build: Callable[[], SpanExporter]) -> None:
        self._build = build
        self._exporter: SpanExporter | None = None
        self._lock = threading.Lock()

    def _built(self) -> SpanExporter:
        with self._lock:
            if self._exporter is None:
                self._exporter = self._build()
            return self._exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._built().export(spans)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            exporter = self._exporter
        return True if exporter is None else exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        with self._lock:
            exporter = self._exporter
        if exporter is not None:
            exporter.shutdown()


def _trace_engine(engine: Engine, provider: TracerProvider) -> None:
    """Statement spans from opentelemetry-instrumentation-sqlalchemy's EngineTracer, which is what
    ``SQLAlchemyInstrumentor().instrument(engine=...)`` attaches. The instrumentor is not called
    because it also patches create_engine, Engine.connect and create_async_engine process-wide,
    and importing sqlalchemy.ext.asyncio for that loads the whole ORM: about 8 MB of RSS that
    this Core-only service never uses."""
    from opentelemetry.instrumentation.sqlalchemy import __name__ as scope
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as scope_version
    from opentelemetry.metrics import get_meter
    from opentelemetry.semconv.metrics import MetricInstruments

    connections = get_meter(scope, scope_version).create_up_down_counter(
        name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE, unit="connections"
    )
    EngineTracer(provider.get_tracer(scope, scope_version), engine, connections)  # type: ignore[no-untyped-call]


@dataclass
class Tracing:
    """Handle to flush and stop tracing at shutdown; a no-op when tracing is off."""

    provider: TracerProvider | None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.force_flush(timeout_millis=5000)
            self.provider.shutdown()


def setup_tracing(settings: Settings, app: Flask, engine: Engine, version: str) -> Tracing:
    endpoint = settings.traces_endpoint
    if endpoint is None:
        log.info("tracing off: no OTEL_EXPORTER_OTLP_ENDPOINT set")
        return Tracing(provider=None)
    from task_manager import http_tracing

    provider = TracerProvider(
        resource=_resource(settings, version),
        sampler=_NoRootClientSpans(_environment_sampler()),
    )
    # The exporter of the configured protocol (task_manager.otlp) reads the endpoint itself.
    # The batch settings are passed because the service's defaults are lower than the SDK's.
    provider.add_span_processor(
        BatchSpanProcessor(
            ExporterOnFirstExport(lambda: span_exporter(settings)),
            schedule_delay_millis=settings.otel_bsp_schedule_delay,
            max_export_batch_size=settings.otel_bsp_max_export_batch_size,
        )
    )
    # Server spans from the service's middleware (sampled first); statement spans from the
    # maintained SQLAlchemy instrumentation, without sqlcommenter, which would rewrite every
    # statement (and defeat the statement cache) to carry the trace context to the database.
    tracer = provider.get_tracer(http_tracing.__name__, version)
    http_tracing.instrument(app, tracer, EXCLUDED_PATHS)
    _trace_engine(engine, provider)
    log.info(
        "tracing on",
        extra={"endpoint": endpoint, "sampler": settings.otel_traces_sampler},
    )
    return Tracing(provider=provider)
