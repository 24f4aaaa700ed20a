"""Bearer-token authentication and per-principal ownership (in-process, but for what only a real
process shows: its logs)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from flask import Flask
from support.app import AppClient, AppFactory
from support.client import Client
from support.service import ALICE_TOKEN, BOB_TOKEN, Service
from task_manager.auth import TokenStore


def test_missing_token_gets_401_problem_with_www_authenticate(app: Flask) -> None:
    response = AppClient(app, None).get("/api/v1/tasks")
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_token_gets_401_with_invalid_token_error(app: Flask) -> None:
    response = AppClient(app, "not-a-valid-token").get("/api/v1/tasks")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_another_principal_gets_404_for_my_task_and_cannot_change_it(
    alice: AppClient, bob: AppClient
) -> None:
    task = alice.create(title="private")
    path = f"/api/v1/tasks/{task['id']}"
    assert bob.get(path).status_code == 404
    assert bob.patch(path, json={"title": "hijacked"}).status_code == 404
    assert bob.delete(path).status_code == 404
    assert task["id"] not in {t["id"] for t in bob.get("/api/v1/tasks?limit=100").json()["items"]}
    assert alice.get(path).json()["title"] == "private"


def test_probes_and_openapi_need_no_token(app: Flask) -> None:
    anonymous = AppClient(app, None)
    for path in ("/livez", "/readyz", "/openapi.json"):
        assert anonymous.get(path).status_code == 200


def test_tokens_file_grants_access_to_its_principals(
    tmp_path: Path, app_factory: AppFactory
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# rotated 2026-01\ncarol:carol-token-from-file\n\n")
    app = app_factory(
        {"TASK_MANAGER_AUTH_TOKENS": "", "TASK_MANAGER_AUTH_TOKENS_FILE": str(tokens)}
    )
    carol = AppClient(app, "carol-token-from-file")
    assert carol.post("/api/v1/tasks", json={"title": "from file"}).status_code == 201
    assert AppClient(app, ALICE_TOKEN).get("/api/v1/tasks").status_code == 401


def test_disabling_auth_explicitly_logs_a_warning_and_serves_anonymously(
    app_factory: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app = app_factory({"TASK_MANAGER_AUTH_ENABLED": "false", "TASK_MANAGER_AUTH_TOKENS": ""})
    assert AppClient(app, None).post("/api/v1/tasks", json={"title": "x"}).status_code == 201
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "DISABLED" in r.message]
    assert len(warnings) == 1


def test_tokens_never_appear_in_the_logs(api: Service, http_alice: Client) -> None:
    http_alice.create(title="logged request")
    Client(api.url, "wrong-token-should-not-be-logged").get("/api/v1/tasks")
    log = api.log()
    for secret in (ALICE_TOKEN, BOB_TOKEN, "wrong-token-should-not-be-logged"):
        assert secret not in log
    assert "Authorization" not in log


def test_rotated_tokens_file_is_picked_up_without_a_restart(
    tmp_path: Path,
    app_factory: AppFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TokenStore, "RELOAD_INTERVAL", 0.05)  # in-process: no 2 s waits
    tokens = tmp_path / "tokens"
    tokens.write_text("carol:carol-token-before\n")
    app = app_factory(
        {"TASK_MANAGER_AUTH_TOKENS": "", "TASK_MANAGER_AUTH_TOKENS_FILE": str(tokens)}
    )
    assert AppClient(app, "carol-token-before").get("/api/v1/tasks").status_code == 200
    # Like a Secret update: a new file is swapped in.
    replacement = tmp_path / "tokens.new"
    replacement.write_text("carol:carol-token-after\n")
    replacement.replace(tokens)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if AppClient(app, "carol-token-after").get("/api/v1/tasks").status_code == 200:
            break
        time.sleep(0.02)
    assert AppClient(app, "carol-token-after").get("/api/v1/tasks").status_code == 200
    assert AppClient(app, "carol-token-before").get("/api/v1/tasks").status_code == 401
    # A broken file keeps the tokens in force.
    tokens.write_text("not a token line\n")
    time.sleep(0.2)
    assert AppClient(app, "carol-token-after").get("/api/v1/tasks").status_code == 200
    assert "keeping the previous tokens" in caplog.text
