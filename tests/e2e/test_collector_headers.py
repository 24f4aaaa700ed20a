"""The collector's export headers, as the chart ships them: values in a Secret mounted as files, the
ConfigMap naming only `${file:...}`. The real collector, with the rendered config and the rendered
Secret's files, sends them to a real OTLP/gRPC receiver standing in for the tracing backend."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from stack import Stack, loopback_config, render, tool, wait_http
from support.otlp_receiver import otlp_grpc_receiver

API_KEY = "e2e-key-from-a-mounted-file"


def test_the_collector_sends_export_headers_read_from_the_mounted_secret_files() -> None:
    rendered = render(
        sets=(
            f"otel-collector.exporter.headers.x-api-key={API_KEY}",
            "otel-collector.exporter.endpoint=backend:4317",
        )
    )
    with (
        tempfile.TemporaryDirectory(prefix="task-manager-headers-") as tmp,
        otlp_grpc_receiver() as backend,
    ):
        stack = Stack(rendered, Path(tmp))
        try:
            collector = stack.collector
            spec = rendered.one("Deployment", collector)["spec"]["template"]["spec"]
            container = spec["containers"][0]
            assert "env" not in container, "header values must not be environment variables"
            (mount,) = [m for m in container["volumeMounts"] if m["name"] == "headers"]
            (volume,) = [v for v in spec["volumes"] if v["name"] == "headers"]
            # The kubelet's part: each Secret key becomes a file of the volume.
            files = Path(tmp) / "headers"
            files.mkdir()
            for source in volume["projected"]["sources"]:
                data = rendered.secret_data(source["secret"]["name"])
                for item in source["secret"]["items"]:
                    (files / item["path"]).write_text(data[item["key"]])
            stack.ports.ports[("backend", 4317)] = backend.port
            config = loopback_config(rendered.config_of(collector), collector, stack.ports)
            config["service"]["telemetry"] = {"metrics": {"level": "none"}}
            text = yaml.safe_dump(config, sort_keys=False)
            assert API_KEY not in text, "the header value is in the collector's config"
            # The one substitution: the mount path, which does not exist on this machine.
            path = Path(tmp) / "otelcol.yaml"
            path.write_text(text.replace(f"{mount['mountPath']}/", f"{files}/"))
            proc = stack.spawn("otelcol", [tool("otelcol"), "--config", str(path)])
            wait_http(proc, f"http://127.0.0.1:{stack.ports.ports[(collector, 13133)]}/")

            otlp_http = stack.ports.ports[(collector, 4318)]
            provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
            exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{otlp_http}/v1/traces")
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            with provider.get_tracer("e2e").start_as_current_span("through-the-collector"):
                pass
            provider.shutdown()
            # The collector's batch processor sends within its timeout (5 s by default).
            assert backend.received.wait(30), proc.tail()
        finally:
            stack.stop()
    export = backend.exports[0]
    assert "through-the-collector" in export.span_names
    assert export.metadata["x-api-key"] == API_KEY
