"""Prometheus metrics: one registry per app, HTTP hooks, domain counters and the metrics server.

The metric names are a contract with the dashboards and alerts (docs/metrics.md); keep them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Route label for requests that matched no URL rule (404s, 405s): one value, never the raw path.
UNMATCHED_ROUTE = "unmatched"

# Paths probed often by the platform; they are counted but not traced or access-logged.
PROBE_PATHS = frozenset({"/livez", "/readyz"})

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class _TaskStatusCollector(Collector):
    """task_manager_tasks{status}: counted in the database at scrape time."""

    def __init__(self, count_by_status: Callable[[], Mapping[str, int]]) -> None:
        self._count = count_by_status

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "task_manager_tasks", "Tasks stored, by status (all principals).", labels=["status"]
        )
        try:
            counts = self._count()
        except Exception:  # a scrape must not fail because the database is briefly away
            return []
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        return [family]


class Metrics:
    """The service's metrics, registered in a registry of their own."""

    def __init__(self, *, version: str, revision: str) -> None:
        # No *_created series: they double the exposition for nothing.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        r = self.registry
        self.request_duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests, by URL rule template, method and status code.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.active_requests = Gauge(
            "http_server_active_requests", "HTTP requests being handled now.", registry=r
        )
        self.tasks_created = Counter("task_manager_tasks_created", "Tasks created.", registry=r)
        self.tasks_updated = Counter("task_manager_tasks_updated", "Tasks updated.", registry=r)
        self.tasks_deleted = Counter("task_manager_tasks_deleted", "Tasks deleted.", registry=r)
        self.db_duration = Histogram(
            "task_manager_db_operation_duration_seconds",
            "Duration of repository operations against the database, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        build = Gauge(
            "task_manager_build_info",
            "Always 1; labels carry the version and source revision.",
            ["version", "revision"],
            registry=r,
        )
        build.labels(version=version, revision=revision).set(1)

    def observe_db(self, operation: str, seconds: float) -> None:
        self.db_duration.labels(operation).observe(seconds)

    def register_task_counts(self, count_by_status: Callable[[], Mapping[str, int]]) -> None:
        self.registry.register(_TaskStatusCollector(count_by_status))

    def instrument(self, app: Flask) -> None:
        """Flask hooks recording the request histogram and the in-flight gauge."""

        @app.before_request
        def _start() -> None:
            g.metrics_start = time.perf_counter()
            self.active_requests.inc()

        @app.after_request
        def _record(response: Response) -> Response:
            g.metrics_status = response.status_code
            return response

        @app.teardown_request
        def _finish(exc: BaseException | None) -> None:
            start: float | None = g.pop("metrics_start", None)
            if start is None:
                return
            self.active_requests.dec()
            status = g.pop("metrics_status", 500)
            rule = request.url_rule
            route = rule.rule if rule is not None else UNMATCHED_ROUTE
            self.request_duration.labels(route, request.method, str(status)).observe(
                time.perf_counter() - start
            )

    def serve(self, host: str, port: int) -> Any:
        """Starts the /metrics HTTP server on its own port in a daemon thread."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
