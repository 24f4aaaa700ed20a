"""Metrics, JSON logs and OTLP traces as an operator sees them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.client import Client
from support.service import ALICE_TOKEN, Service, ServiceFactory


def sample(exposition: str, name: str, **labels: str) -> float:
    for line in exposition.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_request_histogram_uses_the_route_template_not_the_raw_path(api: Service) -> None:
    alice = Client(api.url, ALICE_TOKEN)
    task = alice.create()
    alice.get(f"/api/v1/tasks/{task['id']}")
    exposition = requests.get(api.metrics_url, timeout=5).text
    assert (
        sample(
            exposition,
            "http_server_request_duration_seconds_count",
            route="/api/v1/tasks/<uuid:task_id>",
            method="GET",
            status="200",
        )
        >= 1
    )
    assert str(task["id"]) not in exposition


def test_domain_counters_and_the_status_gauge_follow_the_api(api: Service) -> None:
    alice = Client(api.url, ALICE_TOKEN)
    before = requests.get(api.metrics_url, timeout=5).text
    task = alice.create(status="in_progress")
    alice.patch(f"/api/v1/tasks/{task['id']}", json={"status": "done"})
    other = alice.create()
    alice.delete(f"/api/v1/tasks/{other['id']}")
    after = requests.get(api.metrics_url, timeout=5).text
    for name in ("created", "updated", "deleted"):
        metric = f"task_manager_tasks_{name}_total"
        assert sample(after, metric) >= sample(before, metric) + 1
    assert sample(after, "task_manager_tasks", status="done") >= 1
    assert (
        sample(after, "task_manager_db_operation_duration_seconds_count", operation="update") >= 1
    )
    assert sample(after, "task_manager_build_info", version="0.1.0") == 1


def test_every_log_line_is_json_and_access_lines_carry_route_status_and_duration(
    api: Service,
) -> None:
    alice = Client(api.url, ALICE_TOKEN)
    created = alice.post(
        "/api/v1/tasks", json={"title": "logged"}, headers={"X-Request-Id": "req-abc-123"}
    )
    requests.get(api.url + "/livez", timeout=5)
    lines = [line for line in api.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # raises if any line is not JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "task_manager.access"]
    mine = [r for r in access if r.get("request_id") == "req-abc-123"]
    assert len(mine) == 1
    assert mine[0]["method"] == "POST"
    assert mine[0]["route"] == "/api/v1/tasks"
    assert mine[0]["status"] == 201
    assert mine[0]["duration_ms"] >= 0
    assert created.headers["X-Request-Id"] == "req-abc-123"
    assert not [r for r in access if r["route"] in ("/livez", "/readyz")]


class _Collector(ThreadingHTTPServer):
    """A real OTLP/HTTP receiver on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        super().__init__(("127.0.0.1", 0), _CollectorHandler)


class _CollectorHandler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            message = ExportTraceServiceRequest()
            message.ParseFromString(body)
            self.server.requests.append(message)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_traces_are_exported_over_otlp_http_without_probe_spans(
    service_factory: ServiceFactory, collector: _Collector
) -> None:
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    service = service_factory(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "task-manager-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        }
    )
    alice = Client(service.url, ALICE_TOKEN)
    task = alice.create(title="traced")
    alice.get(f"/api/v1/tasks/{task['id']}")
    for path in ("/livez", "/readyz"):
        requests.get(service.url + path, timeout=5)
    requests.get(service.metrics_url, timeout=5)  # the task-count gauge queries the database
    refused = requests.get(service.url + "/api/v1/tasks", timeout=5)
    assert refused.status_code == 401
    assert service.stop() == 0  # shutdown flushes the batch processor

    spans = []
    resources = []
    for message in collector.requests:
        for resource_spans in message.resource_spans:
            resources.append(
                {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            )
            for scope in resource_spans.scope_spans:
                spans += list(scope.spans)
    names = {span.name for span in spans}
    assert "POST /api/v1/tasks" in names
    assert "GET /api/v1/tasks/<uuid:task_id>" in names
    assert not [n for n in names if "livez" in n or "readyz" in n or "metrics" in n]
    assert any(span.parent_span_id for span in spans), "SQLAlchemy spans are children"
    # SQL outside a request (readiness check, gauge at a scrape) starts no trace of its own.
    orphans = [s.name for s in spans if s.kind == s.SPAN_KIND_CLIENT and not s.parent_span_id]
    assert not orphans, orphans
    # A request refused by auth is traced too.
    assert any(
        s.name == "GET /api/v1/tasks"
        and {a.key: a.value.int_value for a in s.attributes}.get("http.response.status_code") == 401
        for s in spans
    ), names
    assert resources[0]["service.name"] == "task-manager-test"
    assert resources[0]["service.version"] == "0.1.0"
    assert resources[0]["deployment.environment"] == "test"
    trace_ids = {span.trace_id.hex() for span in spans}
    access = [
        json.loads(line) for line in service.log().splitlines() if '"task_manager.access"' in line
    ]
    assert {record["trace_id"] for record in access} <= trace_ids
    assert all(re.fullmatch(r"[0-9a-f]{16}", record["span_id"]) for record in access)


# Run in a fresh interpreter: builds the app with tracing on, serves one sampled request, flushes.
_FIRST_EXPORT = """
import sys
from task_manager.app import create_app
from task_manager.runtime import runtime
from task_manager.settings import Settings

EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
app = create_app(Settings.from_env())
assert EXPORTER not in sys.modules and "requests" not in sys.modules, "loaded at start-up"
response = app.test_client().get("/api/v1/tasks", headers={"Authorization": "Bearer " + TOKEN})
assert response.status_code == 200, response.status_code
assert EXPORTER not in sys.modules, "loaded before the first export"
runtime(app).tracing.shutdown()
assert EXPORTER in sys.modules
"""


def test_the_otlp_exporter_is_loaded_at_the_first_export_not_at_start_up(
    tmp_path: Path, collector: _Collector
) -> None:
    env = {
        **os.environ,
        "TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp_path}/tasks.db",
        "TASK_MANAGER_AUTH_TOKENS": f"alice:{ALICE_TOKEN}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    script = f"TOKEN = {ALICE_TOKEN!r}\n" + _FIRST_EXPORT
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    names = {
        span.name
        for message in collector.requests
        for resource_spans in message.resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    }
    assert "GET /api/v1/tasks" in names, names


def test_tracing_is_off_without_an_endpoint(service_factory: ServiceFactory) -> None:
    service = service_factory()
    Client(service.url, ALICE_TOKEN).create()
    records = [json.loads(line) for line in service.log().splitlines() if line.strip()]
    assert any(r["message"].startswith("tracing off") for r in records)
    assert not [r for r in records if "trace_id" in r]


def test_waitress_queue_depth_warnings_are_silenced_but_errors_kept() -> None:
    import logging

    from task_manager.logging import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO")
        queue = logging.getLogger("waitress.queue")
        assert not queue.isEnabledFor(logging.WARNING)  # "Task queue depth is N" per request
        assert queue.isEnabledFor(logging.ERROR)
        assert logging.getLogger("task_manager.access").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_caller_that_did_not_sample_gets_no_spans_but_its_trace_id_in_the_access_log(
    service_factory: ServiceFactory, collector: _Collector
) -> None:
    service = service_factory(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}"}
    )
    unsampled, sampled = "0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"
    for trace_id, flags in ((unsampled, "00"), (sampled, "01")):
        response = requests.post(
            service.url + "/api/v1/tasks",
            json={"title": f"traced {flags}"},
            headers={
                "Authorization": f"Bearer {ALICE_TOKEN}",
                "traceparent": f"00-{trace_id}-b7ad6b7169203331-{flags}",
            },
            timeout=5,
        )
        assert response.status_code == 201
    read = "5bf92f3577b34da6a3ce929d0e0e4737"
    response = requests.get(
        service.url + "/api/v1/tasks/" + response.json()["id"],
        headers={
            "Authorization": f"Bearer {ALICE_TOKEN}",
            "traceparent": f"00-{read}-b7ad6b7169203331-01",
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert service.stop() == 0

    spans = [
        span
        for message in collector.requests
        for resource_spans in message.resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    assert not [s for s in spans if s.trace_id.hex() == unsampled]
    server = [s for s in spans if s.trace_id.hex() == sampled and s.name == "POST /api/v1/tasks"]
    assert len(server) == 1
    assert server[0].parent_span_id.hex() == "b7ad6b7169203331"
    assert server[0].kind == server[0].SPAN_KIND_SERVER
    attributes = {a.key: a.value for a in server[0].attributes}
    assert attributes["http.route"].string_value == "/api/v1/tasks"
    assert attributes["http.request.method"].string_value == "POST"
    assert attributes["http.response.status_code"].int_value == 201
    # Below the server span: one span per statement, and nothing else.
    statements = [s for s in spans if s.parent_span_id == server[0].span_id]
    assert any(s.name.startswith("INSERT") for s in statements), [s.name for s in spans]
    for statement in statements:
        assert statement.kind == statement.SPAN_KIND_CLIENT
        tags = {a.key: a.value.string_value for a in statement.attributes}
        assert tags["db.system"] == "sqlite"
        assert tags["db.statement"].split()[0] == statement.name.split()[0]
    get = [s for s in spans if s.trace_id.hex() == read and s.name.startswith("GET ")]
    assert len(get) == 1
    reads = [s for s in spans if s.parent_span_id == get[0].span_id]
    assert [s.name.split()[0] for s in reads] == ["SELECT"], [s.name for s in spans]
    access = [
        json.loads(line) for line in service.log().splitlines() if '"task_manager.access"' in line
    ]
    assert {record["trace_id"] for record in access} == {unsampled, sampled, read}


def test_the_direct_log_line_is_what_python_json_logger_writes() -> None:
    import logging

    from pythonjsonlogger.json import JsonFormatter
    from task_manager.logging import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO")
        formatter = root.handlers[0].formatter
        assert isinstance(formatter, JsonFormatter)
        record = logging.getLogger("task_manager.access").makeRecord(
            "task_manager.access", logging.INFO, __file__, 1, "request %s", ("é",), None,
            extra={"route": "/api/v1/tasks", "status": 201, "_private": 1, "when": object()},
        )  # fmt: skip
        assert formatter.format(record) == JsonFormatter.format(formatter, record)
        assert json.loads(formatter.format(record))["message"] == "request é"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_the_service_resource_hashes_and_compares_as_the_sdks_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.resources import Resource
    from task_manager.settings import Settings
    from task_manager.tracing import _resource

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=a")
    resource = _resource(Settings(), "1.2.3")
    plain = Resource(resource.attributes, resource.schema_url)
    assert resource.attributes["service.version"] == "1.2.3"
    assert resource.attributes["team"] == "a"
    assert hash(resource) == hash(plain) == hash(resource)  # computed once, then kept
    assert resource == plain
    assert {plain: "spans"}[resource] == "spans"  # the OTLP encoder's grouping
    assert resource != Resource({**resource.attributes, "team": "b"}, resource.schema_url)
