"""OpenTelemetry tracing configured only from the OTEL_* settings; off when no endpoint is set."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.wsgi import (
    add_response_attributes,
    collect_request_attributes,
    wsgi_getter,
)
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
from opentelemetry.semconv.trace import SpanAttributes
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import Engine, event

from task_manager.settings import Settings

log = logging.getLogger(__name__)

# Probes and metrics are never traced.
UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
HTTP_ROUTE = SpanAttributes.HTTP_ROUTE


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
    tracer = provider.get_tracer("task_manager", version)
    _trace_requests(app, tracer)
    _trace_statements(engine, tracer)
    log.info(
        "tracing on",
        extra={"endpoint": endpoint, "sampler": settings.otel_traces_sampler},
    )
    return Tracing(provider=provider)


# Request and statement spans are made here rather than by opentelemetry-instrumentation-flask and
# -sqlalchemy: those compute every attribute (URL rebuilt, regexes run) and start a span per pool
# checkout and per statement whether or not the request is sampled, which cost more than the
# request itself at 10% sampling. Here an unsampled request costs one sampler call and a context
# switch, and the attributes of sampled spans are the same semantic conventions as theirs.


def _trace_requests(app: Flask, tracer: Tracer) -> None:
    """A SERVER span per request named `METHOD route-template`; probes and /metrics excluded."""

    def _start() -> None:
        if request.path in UNTRACED_PATHS:
            return
        environ = request.environ
        parent = propagate.extract(environ, getter=wsgi_getter)
        rule = request.url_rule
        name = f"{request.method} {rule.rule}" if rule is not None else request.method
        span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
        if span.is_recording():
            span_attributes = collect_request_attributes(environ)
            if rule is not None:
                span_attributes[HTTP_ROUTE] = rule.rule
            span.set_attributes(span_attributes)
        token = context.attach(trace.set_span_in_context(span, parent))
        g.otel_request_span = (span, token)

    # First of the before_request hooks, so that requests refused by auth are traced too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _status(response: Response) -> Response:
        started = g.get("otel_request_span")
        if started is not None and started[0].is_recording():
            add_response_attributes(started[0], response.status, [])
        return response

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:
        started = g.pop("otel_request_span", None)
        if started is None:
            return
        span, token = started
        if exc is not None and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
        context.detach(token)


def _trace_statements(engine: Engine, tracer: Tracer) -> None:
    """A CLIENT span per SQL statement, only below a sampled span (no orphan probe spans)."""
    url = engine.url
    vendor = engine.dialect.name
    base: dict[str, str | int] = {"db.system": vendor}
    if url.database:
        base["db.name"] = url.database
    if url.host:
        base["net.peer.name"] = url.host
    if url.port:
        base["net.peer.port"] = url.port
    if url.username:
        base["db.user"] = url.username
    suffix = f" {url.database}" if url.database else ""

    def _before(
        _conn: Any, _cursor: Any, statement: str, _params: Any, ctx: Any, _many: bool
    ) -> None:
        if not trace.get_current_span().is_recording():
            return
        words = statement.split(None, 1)
        span = tracer.start_span((words[0] if words else vendor) + suffix, kind=SpanKind.CLIENT)
        span.set_attributes(base)
        span.set_attribute("db.statement", statement)
        ctx.otel_statement_span = span

    def _after(
        _conn: Any, _cursor: Any, _statement: str, _params: Any, ctx: Any, _many: bool
    ) -> None:
        span = getattr(ctx, "otel_statement_span", None)
        if span is not None:
            ctx.otel_statement_span = None
            span.end()

    def _error(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, "otel_statement_span", None)
        if span is not None:
            exception_context.execution_context.otel_statement_span = None
            span.set_status(Status(StatusCode.ERROR, str(exception_context.original_exception)))
            span.end()

    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
    event.listen(engine, "handle_error", _error)
