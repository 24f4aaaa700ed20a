"""The OTLP span exporter for the configured protocol (OTEL_EXPORTER_OTLP_PROTOCOL).

Each exporter is imported only when chosen: an http/protobuf process never loads grpcio, and a
process without tracing loads neither. Both read OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT themselves;
the headers are passed from Settings, because they may come from OTEL_EXPORTER_OTLP_HEADERS_FILE,
which the SDK does not know.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.re import parse_env_headers

from task_manager.settings import Settings


def export_headers(settings: Settings) -> Mapping[str, str] | None:
    """The export headers, parsed (and percent-decoded) as the SDK parses the variable."""
    if settings.otel_exporter_otlp_headers is None:
        return None
    return parse_env_headers(settings.otel_exporter_otlp_headers.get_secret_value(), liberal=True)


def span_exporter(settings: Settings) -> SpanExporter:
    """An OTLP span exporter speaking ``settings.otel_exporter_otlp_protocol``."""
    headers = export_headers(settings)
    if settings.otel_exporter_otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(headers=dict(headers) if headers is not None else None)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(headers=headers)
