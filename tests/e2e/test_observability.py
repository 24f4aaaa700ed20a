"""End to end on real components: app -> collector -> Jaeger, app and collector -> Prometheus.

Every check goes through the programs' own HTTP APIs (Jaeger's query API, Prometheus' query API):
traces carry the service name, the route template, the status code and a database child span; the
app's log lines carry the trace ids Jaeger stored; every dashboard query and every alert rule
returns series from the real Prometheus scraping the real app and collector.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from stack import NAMESPACE, POD, Stack, Traffic, render, wait_http
from support.dashboards import dashboard_variables, substitute
from support.net import free_ports

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana-dashboards").glob("*.json"))

# Alerts whose inputs cannot exist outside a cluster, with the reason. Every other alert's
# expression (with its comparisons made non-filtering, see `unfiltered`) must return series.
ALERTS_WITHOUT_LOCAL_INPUTS = {
    "TaskManagerPodNotReady": "kube_pod_status_ready comes from kube-state-metrics in a cluster",
}


# --- Jaeger -------------------------------------------------------------------------------------


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def status_code(span: dict[str, Any]) -> int | None:
    t = tags(span)
    value = t.get("http.response.status_code", t.get("http.status_code"))
    return int(value) if value is not None else None


def server_spans(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in trace["spans"] if tags(s).get("span.kind") == "server"]


def jaeger_traces(
    stack: Stack, service: str, want: int, timeout: float = 90
) -> list[dict[str, Any]]:
    """The service's traces in Jaeger, waiting until at least `want` server spans arrived (the
    app's batch span processor and the collector's batch processor both delay export)."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(
            f"{stack.jaeger_url}/api/traces",
            params={"service": service, "limit": 200, "lookback": "1h"},
            timeout=10,
        )
        r.raise_for_status()
        traces: list[dict[str, Any]] = r.json()["data"] or []
        if sum(len(server_spans(t)) for t in traces) >= want or time.monotonic() > deadline:
            return traces
        time.sleep(1)


@pytest.fixture(scope="module")
def service_name(stack: Stack) -> str:
    return stack.service_name


@pytest.fixture(scope="module")
def traces(stack: Stack, traffic: Traffic, service_name: str) -> list[dict[str, Any]]:
    return jaeger_traces(stack, service_name, want=len(traffic.calls))


def test_every_request_arrives_in_jaeger_as_a_server_span_with_route_and_status(
    stack: Stack, traffic: Traffic, traces: list[dict[str, Any]], service_name: str
) -> None:
    services = requests.get(f"{stack.jaeger_url}/api/services", timeout=10).json()["data"]
    assert service_name in services
    seen = {
        (tags(s).get("http.request.method", tags(s).get("http.method")), status_code(s))
        for t in traces
        for s in server_spans(t)
    }
    for method, _path, status in traffic.calls:
        assert (method, status) in seen, f"no server span for {method} -> {status}: {seen}"


def test_an_app_rendered_with_tracing_protocol_grpc_exports_to_the_collectors_grpc_port(
    stack: Stack,
) -> None:
    """A second app process with the environment of a `tracing.protocol=grpc` render: its spans
    reach Jaeger through the real collector's OTLP/gRPC receiver (port 4317)."""
    rendered = render(sets=("tracing.protocol=grpc",))
    pod_env = rendered.container_env(stack.app, POD)
    assert pod_env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert pod_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{stack.collector}:4317"
    port, metrics_port = free_ports(2)
    service = "task-manager-over-grpc"
    env = {
        **stack.app_env,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.ports.dial(pod_env["OTEL_EXPORTER_OTLP_ENDPOINT"]),
        "OTEL_SERVICE_NAME": service,
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
        "TASK_MANAGER_DATABASE_URL": f"sqlite:///{stack.dir / 'grpc.db'}",
    }
    proc = stack.spawn("app-grpc", [str(ROOT / ".venv" / "bin" / "task-manager"), "serve"], env)
    try:
        wait_http(proc, f"http://127.0.0.1:{port}/readyz")
        r = requests.get(
            f"http://127.0.0.1:{port}/api/v1/tasks",
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        traces = jaeger_traces(stack, service, want=1)
        assert [s["operationName"] for t in traces for s in server_spans(t)], proc.tail()
    finally:
        proc.stop()


def test_server_spans_name_the_route_template_not_the_raw_path(
    traffic: Traffic, traces: list[dict[str, Any]]
) -> None:
    routes = {tags(s).get("http.route") for t in traces for s in server_spans(t)}
    assert any(r and r.rstrip("/").endswith("/tasks") for r in routes), routes
    by_id = [r for r in routes if r and "tasks/" in r]
    assert by_id, routes
    assert all(traffic.task_id not in r for r in by_id), by_id


def test_api_requests_have_a_database_child_span(traces: list[dict[str, Any]]) -> None:
    found = []
    for trace in traces:
        for server in server_spans(trace):
            if status_code(server) not in (200, 201):
                continue
            children = [
                s
                for s in trace["spans"]
                if any(ref["spanID"] == server["spanID"] for ref in s.get("references", []))
            ]
            descendants = {s["spanID"] for s in children}
            # SQLAlchemy's spans may hang below an intermediate span of the app; follow the tree.
            for _ in range(5):
                for s in trace["spans"]:
                    if any(ref["spanID"] in descendants for ref in s.get("references", [])):
                        descendants.add(s["spanID"])
            db = [
                s
                for s in trace["spans"]
                if s["spanID"] in descendants and ({"db.system", "db.system.name"} & tags(s).keys())
            ]
            if db:
                found.append((server["operationName"], db[0]["operationName"]))
    assert found, "no successful API request has a database span below its server span"


def test_log_lines_carry_the_trace_ids_jaeger_stored(
    stack: Stack, traffic: Traffic, traces: list[dict[str, Any]]
) -> None:
    log_ids = set()
    for line in (stack.dir / "app.log").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("trace_id"):
            log_ids.add(str(record["trace_id"]).lower().lstrip("0"))
    jaeger_ids = {t["traceID"].lower().lstrip("0") for t in traces}
    assert log_ids, "no log line carries a trace_id"
    # Every request the test made was traced (100% sampling in values-dev) and logged.
    assert len(jaeger_ids & log_ids) >= len(traffic.calls), (
        f"{len(jaeger_ids & log_ids)} of {len(traffic.calls)} traces found in the logs"
    )


# --- Prometheus ---------------------------------------------------------------------------------


def instant(stack: Stack, expr: str) -> list[dict[str, Any]]:
    r = requests.get(f"{stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=30)
    body = r.json()
    assert body.get("status") == "success", f"{expr}\n{body}"
    return body["data"]["result"]  # type: ignore[no-any-return]


def eventually_nonempty(stack: Stack, expr: str, deadline: float) -> list[dict[str, Any]]:
    while True:
        result = instant(stack, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(2)


@pytest.fixture(scope="module")
def scraped(stack: Stack, traffic: Traffic) -> float:
    """Waits until Prometheus holds two scrapes of the app after the traffic (what rate() needs)
    and returns the deadline the remaining polls share."""
    interval = max(
        stack.scrape_interval_seconds(stack.app), stack.scrape_interval_seconds(stack.collector)
    )
    deadline = time.monotonic() + 3 * interval + 30
    expr = (
        'count(count_over_time(http_server_request_duration_seconds_count{status="422"}[10m]) >= 2)'
    )
    assert eventually_nonempty(stack, expr, deadline), "Prometheus never scraped the traffic twice"
    # The collector's export counters move after its batch timeout; give them their scrapes too.
    sent = "count(count_over_time(otelcol_exporter_sent_spans[10m]) >= 2)"
    eventually_nonempty(stack, sent, deadline)
    return deadline


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_series(stack: Stack, scraped: float, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    values = dashboard_variables(
        stack.prometheus_url, dashboard, stack.scrape_interval_seconds(stack.app)
    )
    assert values.get("namespace") == NAMESPACE
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], values)
            assert "$" not in expr, f"unsubstituted variable in {expr}"
            if not eventually_nonempty(stack, expr, scraped):
                empty.append(f"{panel['title']} [{target['refId']}]: {expr}")
    assert not empty, "queries without series:\n" + "\n".join(empty)


def unfiltered(expr: str) -> str:
    """The alert expression with every comparison made a `bool` comparison: instead of dropping
    the series that do not breach the threshold it returns them with value 0. So the expression
    returns series exactly when all its selectors match and its arithmetic lines up, while the
    alert itself (rightly) stays silent on healthy traffic."""
    out, depth, quote, i = [], 0, "", 0
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif c in "{[":
            depth += 1
            out.append(c)
        elif c in "}]":
            depth -= 1
            out.append(c)
        elif depth == 0 and (m := re.match(r"(==|!=|>=|<=|>|<)(\s*bool\b)?", expr[i:])):
            out.append(m[1] + " bool")
            i += len(m[0])
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def test_unfiltered_turns_comparisons_into_bool_and_leaves_matchers_alone() -> None:
    expr = 'rate(x{a!="b",c=~"d>e"}[5m]) > 0.1 and up{job="j"} == 0'
    assert unfiltered(expr) == 'rate(x{a!="b",c=~"d>e"}[5m]) > bool 0.1 and up{job="j"} == bool 0'


def test_every_alert_expression_returns_series(stack: Stack, scraped: float) -> None:
    alerts = [r for g in stack.r.rule_groups for r in g["rules"] if "alert" in r]
    assert set(ALERTS_WITHOUT_LOCAL_INPUTS) <= {a["alert"] for a in alerts}
    empty = []
    for alert in alerts:
        if alert["alert"] in ALERTS_WITHOUT_LOCAL_INPUTS:
            continue
        expr = unfiltered(alert["expr"])
        if not eventually_nonempty(stack, expr, scraped):
            empty.append(f"{alert['alert']}: {expr}")
    assert not empty, "alert expressions without series:\n" + "\n".join(empty)


def test_prometheus_evaluates_every_rendered_rule_without_error(
    stack: Stack, scraped: float
) -> None:
    deadline = time.monotonic() + 30
    while True:
        groups = requests.get(f"{stack.prometheus_url}/api/v1/rules", timeout=10).json()["data"][
            "groups"
        ]
        rules = [r for g in groups for r in g["rules"]]
        if all(r.get("lastEvaluation", "").startswith("0001") is False for r in rules) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1)
    expected = sum(len(g["rules"]) for g in stack.r.rule_groups)
    assert len(rules) == expected
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad


def test_both_scrape_targets_are_up(stack: Stack, scraped: float) -> None:
    up = {
        r["metric"]["job"]: r["value"][1] for r in instant(stack, f'up{{namespace="{NAMESPACE}"}}')
    }
    assert up == {stack.app: "1", stack.collector: "1"}
