"""OTEL_EXPORTER_OTLP_PROTOCOL: spans reach a real OTLP/gRPC receiver, and the gRPC exporter is
imported only by a process that chose it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from support.otlp_receiver import otlp_grpc_receiver
from task_manager.otlp import span_exporter
from task_manager.settings import Settings


def test_grpc_protocol_exports_spans_with_the_headers_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = tmp_path / "headers"
    headers.write_text("x-api-key=s3cret%20key\n")
    with otlp_grpc_receiver() as receiver:
        endpoint = f"http://127.0.0.1:{receiver.port}"
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
        assert receiver.received.wait(10), "the receiver got no export"
    (export,) = receiver.exports
    assert export.span_names == ["over-grpc"]
    assert export.metadata["x-api-key"] == "s3cret key"


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
