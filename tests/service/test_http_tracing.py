"""The tracing middleware against opentelemetry-instrumentation-flask, on the same requests.

Two identical Flask apps, one wrapped by task_manager.http_tracing and one by the maintained
instrumentation (stable HTTP semantic conventions, OTEL_SEMCONV_STABILITY_OPT_IN=http), each with
its own SDK provider exporting to memory, get the same requests through werkzeug's test client;
their server spans must agree in name, kind, status, attributes, events and parent. The
instrumentation reads its opt-in mode once per process, so the comparison runs in a child
interpreter (this file run as a script), which prints the spans as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"

# (method, path, headers, JSON body): matched routes, a query, a 404, a 405, a 500 from an
# exception, an unknown method (unrouted and routed), a synthetic user agent, a sampled caller's
# traceparent.
REQUESTS: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/items/7", {"User-Agent": "curl/8.5"}, None),
    ("GET", "/items?limit=3&label=a", {}, None),
    ("POST", "/items", {"User-Agent": "Googlebot/2.1"}, {"title": "x"}),
    ("GET", "/nowhere/at/all", {}, None),
    ("DELETE", "/items", {}, None),
    ("GET", "/boom", {}, None),
    ("FOO", "/items/7", {}, None),
    ("FOO", "/custom", {}, None),
    ("GET", "/items/8", {"traceparent": TRACEPARENT}, None),
]


def _app(name: str) -> Any:
    from flask import Flask, jsonify

    app = Flask(name)

    @app.get("/items/<int:item>")
    def get_item(item: int) -> Any:
        return jsonify({"item": item})

    @app.route("/items", methods=["GET", "POST"])
    def items() -> Any:
        return jsonify([]), 201

    @app.route("/custom", methods=["FOO"])
    def custom() -> Any:
        return jsonify({})

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("the handler failed")

    return app


def _event_attributes(event: Any) -> dict[str, Any]:
    """An event's attributes without the stack trace (its line numbers differ)."""
    return {k: v for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"}


def _spans(exporter: Any) -> list[dict[str, Any]]:
    from opentelemetry.trace import SpanKind

    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    return [
        {
            "name": span.name,
            "kind": span.kind.name,
            "status": [span.status.status_code.name, span.status.description],
            "attributes": dict(span.attributes or {}),
            "events": [[event.name, _event_attributes(event)] for event in span.events],
            "trace_id": format(span.context.trace_id, "032x"),
            "parent": format(span.parent.span_id, "016x") if span.parent else None,
        }
        for span in spans
    ]


def _run(app: Any) -> None:
    client = app.test_client()
    for method, path, headers, body in REQUESTS:
        client.open(path, method=method, headers=headers, json=body)


def main() -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from task_manager import http_tracing

    result = {}
    for kind in ("middleware", "instrumentation"):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        app = _app(kind)
        if kind == "middleware":
            http_tracing.instrument(app, provider.get_tracer("test"), frozenset({"/readyz"}))
        else:
            FlaskInstrumentor().instrument_app(
                app, tracer_provider=provider, excluded_urls="readyz", enable_commenter=False
            )
        _run(app)
        result[kind] = _spans(exporter)
    json.dump(result, sys.stdout)


def test_sampled_server_spans_match_the_maintained_flask_instrumentation() -> None:
    env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": "http"}
    out = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    spans = json.loads(out)
    middleware, instrumentation = spans["middleware"], spans["instrumentation"]
    assert len(instrumentation) == len(REQUESTS)
    assert len(middleware) == len(REQUESTS)
    for ours, theirs in zip(middleware, instrumentation, strict=True):
        # Each app makes its own trace ids, except under a caller's traceparent.
        if theirs["parent"] is None:
            ours.pop("trace_id"), theirs.pop("trace_id")
        assert ours == theirs
    # The comparison covered what it claims to.
    by_name = {span["name"]: span for span in instrumentation}
    assert by_name["GET /items/<int:item>"]["attributes"]["http.route"] == "/items/<int:item>"
    assert by_name["GET /boom"]["status"] == ["ERROR", "RuntimeError: the handler failed"]
    assert by_name["GET /boom"]["events"][0][0] == "exception"
    assert by_name["HTTP /custom"]["attributes"]["http.request.method_original"] == "FOO"
    traced = [s for s in instrumentation if s["parent"]]
    assert traced[0]["parent"] == "b7ad6b7169203331"
    assert traced[0]["trace_id"] == TRACEPARENT.split("-")[1]


def test_an_unsampled_request_reads_only_its_method_path_and_propagation_headers() -> None:
    from opentelemetry import trace
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    from task_manager.http_tracing import TracingMiddleware

    seen: dict[str, Any] = {}

    class Environ(dict[str, Any]):
        read: ClassVar[set[str]] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.read.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> Any:
            self.read.add(key)
            return super().__getitem__(key)

    def app(environ: Any, start_response: Any) -> list[bytes]:
        span = trace.get_current_span()
        seen["trace_id"] = span.get_span_context().trace_id
        seen["recording"] = span.is_recording()
        seen["sql hooks on"] = is_instrumentation_enabled()
        start_response("200 OK", [])
        return [b"ok"]

    middleware = TracingMiddleware(
        app, TracerProvider(sampler=ALWAYS_OFF).get_tracer("test"), frozenset()
    )
    environ = Environ(
        REQUEST_METHOD="GET", PATH_INFO="/items/7", HTTP_HOST="h:1", HTTP_USER_AGENT="ua",
        SERVER_PORT="1", REMOTE_ADDR="10.0.0.1", SERVER_PROTOCOL="HTTP/1.1",
        HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-00",
    )  # fmt: skip
    assert list(middleware(environ, lambda *_: None)) == [b"ok"]
    assert seen == {"trace_id": 0x4BF92F3577B34DA6A3CE929D0E0E4736, "recording": False,
                    "sql hooks on": False}  # fmt: skip
    assert environ.read <= {"PATH_INFO", "REQUEST_METHOD", "HTTP_TRACEPARENT", "HTTP_TRACESTATE",
                            "HTTP_BAGGAGE"}, environ.read  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
