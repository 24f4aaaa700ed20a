"""Grafana dashboards' queries as Grafana would send them to a Prometheus: variables resolved."""

from __future__ import annotations

import re
from typing import Any

import requests


def label_values(prometheus: str, query: str) -> list[str]:
    """Grafana's label_values(selector, label) through Prometheus' label values API."""
    m = re.fullmatch(r"label_values\((?:(.+),\s*)?(\w+)\)", query.strip())
    assert m, query
    params = {"match[]": m[1]} if m[1] else {}
    r = requests.get(f"{prometheus}/api/v1/label/{m[2]}/values", params=params, timeout=10)
    return r.json()["data"]  # type: ignore[no-any-return]


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr


def dashboard_variables(
    prometheus: str, dashboard: dict[str, Any], scrape_interval_s: float
) -> dict[str, str]:
    """Resolves the dashboard's query variables in order, as Grafana does: first value for a
    single-value variable, every value (regex alternation) for a multi-value one."""
    values: dict[str, str] = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "constant":
            values[var["name"]] = str(var["query"])
            continue
        if var["type"] != "query":
            continue
        options = label_values(prometheus, substitute(var["query"]["query"], values))
        if not options and var.get("includeAll") and "allValue" in var:
            # Grafana's "All": e.g. the cluster of a Prometheus whose series have no such label.
            values[var["name"]] = var["allValue"]
            continue
        assert options, f"{dashboard['uid']}: variable {var['name']} has no values"
        values[var["name"]] = "|".join(options) if var.get("multi") else options[0]
    interval = max(scrape_interval_s, 15)
    # $__rate_interval = max($__interval + scrape interval, 4 * scrape interval) in Grafana.
    values["__rate_interval"] = f"{int(4 * interval)}s"
    return values
