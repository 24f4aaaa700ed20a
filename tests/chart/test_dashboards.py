"""Structure checks of the hand-kept Grafana dashboards in grafana-dashboards/.

The JSON files are the source (see docs/observability.md for why); these tests hold them to a
schema (tests/chart/dashboard.schema.json) and to the rules that make them portable: datasource only
through ${datasource}, every query scoped by the namespace and pod variables, a sane grid layout.
Whether each query returns data against the real service is proven in tests/e2e.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana-dashboards").glob("*.json"))
SCHEMA = json.loads((Path(__file__).parent / "dashboard.schema.json").read_text())

# What each dashboard has to show (issue 4): metric names its queries must use.
REQUIRED_METRICS = {
    "task-manager-overview": [
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "http_server_active_requests",
    ],
    "task-manager-slo": [
        "http_server_request_duration_seconds_count",
        'http_server_request_duration_seconds_bucket{cluster=~"$cluster",namespace="$namespace",pod=~"$pod",le="$latency_threshold"}',
    ],
    "task-manager-tasks": [
        "task_manager_tasks_created_total",
        "task_manager_tasks_updated_total",
        "task_manager_tasks_deleted_total",
        "task_manager_tasks{",
    ],
    "task-manager-trace-pipeline": [
        "otelcol_receiver_accepted_spans",
        "otelcol_receiver_refused_spans",
        "otelcol_exporter_sent_spans",
        "otelcol_exporter_send_failed_spans",
        "otelcol_exporter_queue_size",
    ],
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def selectors(expr: str) -> list[str]:
    """The label-matcher blocks `{...}` of every metric selector in a PromQL expression."""
    return re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{([^}]*)\}", expr)


def test_the_four_dashboards_of_issue_4_exist() -> None:
    assert {p.stem for p in DASHBOARDS} == set(REQUIRED_METRICS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_matches_the_schema(path: Path) -> None:
    jsonschema.validate(load(path), SCHEMA)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_uid_is_the_file_name_so_each_dashboard_has_a_stable_url(path: Path) -> None:
    assert load(path)["uid"] == path.stem


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_no_datasource_uid_is_hard_coded(path: Path) -> None:
    dashboard = load(path)
    for node in walk(dashboard):
        ds = node.get("datasource")
        if isinstance(ds, dict):
            assert ds.get("uid") == "${datasource}", node.get("title", node.get("name"))
        else:
            assert ds is None, f"datasource given as {ds!r} in {node.get('title')}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_is_scoped_to_the_selected_cluster_namespace_and_pods(path: Path) -> None:
    for panel in query_panels(load(path)):
        for target in panel["targets"]:
            blocks = selectors(target["expr"])
            assert blocks, f"{panel['title']}: no metric selector in {target['expr']}"
            for block in blocks:
                assert 'cluster=~"$cluster",namespace="$namespace"' in block, (
                    f"{panel['title']}: {block}"
                )
                assert 'pod=~"$pod"' in block, f"{panel['title']}: {block}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_have_unique_ids_and_do_not_overlap(path: Path) -> None:
    panels = load(path)["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_the_metrics_it_is_about(path: Path) -> None:
    exprs = "\n".join(t["expr"] for p in query_panels(load(path)) for t in p["targets"])
    for metric in REQUIRED_METRICS[path.stem]:
        assert metric in exprs, f"{path.stem} does not query {metric}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_and_target_explains_itself(path: Path) -> None:
    for panel in query_panels(load(path)):
        assert panel["description"].strip(), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_the_cluster_variable_defaults_to_all_for_series_without_a_cluster_label(
    path: Path,
) -> None:
    variables = {v["name"]: v for v in load(path)["templating"]["list"]}
    cluster = variables["cluster"]
    assert cluster["includeAll"] is True
    assert cluster["allValue"] == ".*"  # also matches series that have no cluster label
    assert cluster["query"]["query"].endswith(", cluster)")
    assert 'cluster=~"$cluster"' in variables["namespace"]["query"]["query"]
