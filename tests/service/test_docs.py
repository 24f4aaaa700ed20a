"""Committed documents stay in step with the code that they describe."""

from __future__ import annotations

import json
import re

import requests
from flask import Flask
from support.app import AppClient
from support.paths import REPO_ROOT
from support.service import Service
from task_manager.api.openapi import document_json
from task_manager.configuration_doc import render_configuration_markdown
from task_manager.settings import known_environment_variables

DOCS = REPO_ROOT / "docs"


def test_committed_openapi_document_matches_the_models() -> None:
    committed = (DOCS / "openapi.json").read_text(encoding="utf-8")
    assert committed == document_json(), (
        "docs/openapi.json is stale: run `.venv/bin/task-manager openapi > docs/openapi.json`"
    )


def test_served_openapi_document_is_the_committed_one(sqlite_app: Flask) -> None:
    served = AppClient(sqlite_app, None).get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))
    assert served.json()["openapi"] == "3.1.0"


def test_configuration_doc_is_generated_from_the_settings_module() -> None:
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == render_configuration_markdown(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/task-manager check-config --markdown > docs/configuration.md`"
    )


def test_configuration_doc_lists_every_variable_the_service_reads() -> None:
    documented = set(
        re.findall(r"^\| `([A-Z_]+)` \|", (DOCS / "configuration.md").read_text(), re.MULTILINE)
    )
    assert documented == known_environment_variables()


def test_metrics_doc_lists_exactly_the_exposed_families(sqlite_service: Service) -> None:
    exposition = requests.get(sqlite_service.metrics_url, timeout=10).text
    exposed = {
        match
        for match in re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE)
        if match.startswith(("http_server_", "task_manager_"))
    }
    # prometheus-client names counter families without _total in TYPE lines.
    exposed = {name + "_total" if f"{name}_total " in exposition else name for name in exposed}
    documented = set(
        re.findall(r"^\| `([a-z_]+)` \|", (DOCS / "metrics.md").read_text(), re.MULTILINE)
    )
    assert documented == exposed


def test_openapi_documents_the_storage_failures_of_every_task_operation() -> None:
    """storage/failures.py answers 503 when the database is away and 507 when a write finds no
    space: clients generated from the document must know both."""
    paths = json.loads(document_json())["paths"]
    operations = [
        (method, responses["responses"])
        for path, item in paths.items()
        if path.startswith("/api/v1/tasks")
        for method, responses in item.items()
        if method != "parameters"
    ]
    assert len(operations) == 5
    for method, responses in operations:
        assert "Retry-After" in responses["503"]["headers"], method
        assert ("507" in responses) == (method in {"post", "patch", "delete"}), method
