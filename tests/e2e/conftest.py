"""Fixtures of the end-to-end tier: the chart's observability stack on loopback ports.

`stack` renders the chart with values-dev.yaml and starts real Jaeger, the real collector (with the
rendered config), the app (with the rendered OTEL_* env) and a real Prometheus (static scrape jobs
for the metrics ports and the rendered PrometheusRule loaded); everything is
stopped at the end of the session. `traffic` drives the API once and records what it did.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from stack import Stack, Traffic, running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack("values-dev.yaml") as s:
        yield s


@pytest.fixture(scope="session")
def traffic(stack: Stack) -> Traffic:
    api = f"{stack.api_url}/api/v1"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.token}"
    t = Traffic()

    def call(method: str, path: str, expect: int, **kw: Any) -> requests.Response:
        r = session.request(method, api + path, timeout=10, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        t.calls.append((method, path, r.status_code))
        return r

    created = call("POST", "/tasks", 201, json={"title": "trace me", "labels": ["e2e"]})
    t.task_id = created.json()["id"]
    call("POST", "/tasks", 201, json={"title": "delete me"})
    call("GET", "/tasks", 200)
    got = call("GET", f"/tasks/{t.task_id}", 200)
    call(
        "PATCH",
        f"/tasks/{t.task_id}",
        200,
        data='{"status": "in_progress"}',
        headers={"Content-Type": "application/merge-patch+json", "If-Match": got.headers["ETag"]},
    )
    doomed = call("GET", "/tasks", 200).json()
    doomed_id = next(i["id"] for i in doomed["items"] if i["title"] == "delete me")
    call("DELETE", f"/tasks/{doomed_id}", 204)
    call("GET", f"/tasks/{uuid.uuid4()}", 404)
    call("POST", "/tasks", 422, json={"title": ""})
    return t
