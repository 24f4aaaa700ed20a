"""OTEL_EXPORTER_OTLP_PROTOCOL: spans reach a real OTLP/gRPC receiver, and the gRPC exporter is
imported only by a process that chose it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from task_manager.otlp import span_exporter
from task_manager.settings import Settings


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP/gRPC trace service: keeps what it is sent, with the request metadata."""

    def __init__(self) -> None:
        self.requests: list[tuple[trace_service_pb2.ExportTraceServiceRequest, dict[str, str]]] = []
        self.received = threading.Event()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append((request, dict(context.invocation_metadata())))
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, int]]:
    servicer = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(grace=None).wait(5)


def test_grpc_protocol_exports_spans_with_the_headers_from_the_file(
    receiver: tuple[_Receiver, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, port = receiver
    endpoint = f"http://127.0.0.1:{port}"
    headers = tmp_path / "headers"
    headers.write_text("x-api-key=s3cret%20key\n")
    # The exporter reads the endpoint from the process environment, as in the pod.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    settings = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS_FILE": str(headers),
        }
    )
    assert settings.traces_endpoint == endpoint  # no /v1/traces path over gRPC
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(settings)))
    with provider.get_tracer("test").start_as_current_span("over-grpc"):
        pass
    provider.shutdown()
    assert servicer.received.wait(10), "the receiver got no export"
    request, metadata = servicer.requests[0]
    spans = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert spans == ["over-grpc"]
    assert metadata["x-api-key"] == "s3cret key"


@pytest.mark.parametrize(("protocol", "grpc_loaded"), [("http/protobuf", False), ("grpc", True)])
def test_the_grpc_exporter_is_imported_only_when_chosen(protocol: str, grpc_loaded: bool) -> None:
    script = (
        "import sys\n"
        "from task_manager.otlp import span_exporter\n"
        "from task_manager.settings import Settings\n"
        "s = Settings.from_env({'OTEL_EXPORTER_OTLP_PROTOCOL': sys.argv[1],"
        " 'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:1'})\n"
        "span_exporter(s).shutdown()\n"
        "print('grpc' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, protocol],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == str(grpc_loaded)
