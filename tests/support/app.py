"""The app in-process: `create_app(settings)` behind Flask's test client, for the tests that need no
real process (validation, errors, ETags, cursors, merge patch, auth headers, OpenAPI).

AppClient has the interface of support.client.Client, so a test reads the same on either tier.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from task_manager.app import create_app
from task_manager.settings import Settings
from task_manager.storage import build_engine
from task_manager.storage.migrate import upgrade
from werkzeug.datastructures import Headers
from werkzeug.test import TestResponse

from support.client import TaskApi
from support.service import TOKENS

AppFactory = Callable[[Mapping[str, str]], Flask]


def in_process_app(database_url: str, env: Mapping[str, str] | None = None) -> Flask:
    """The app as `serve` builds it, on a database migrated here first (in this process: the
    test process may hold Alembic, and create_app then has no migration to start)."""
    engine = build_engine(database_url, pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    settings = Settings.from_env(
        {
            "TASK_MANAGER_DATABASE_URL": database_url,
            "TASK_MANAGER_AUTH_TOKENS": TOKENS,
            "TASK_MANAGER_MIGRATE_ON_START": "false",
            **(env or {}),
        }
    )
    return create_app(settings)


class Reply:
    """A test client response with the reading interface of requests.Response."""

    def __init__(self, response: TestResponse) -> None:
        self.status_code = response.status_code
        self.headers: Headers = response.headers
        self.content = response.get_data()

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


class AppClient(TaskApi):
    """Requests to an in-process app as one principal (None: no Authorization header)."""

    def __init__(self, app: Flask, token: str | None) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        if params is not None:  # else a query in the path (e.g. from a Link header) stands
            kwargs["query_string"] = dict(params)
        response = self.client.open(
            path, method=method, headers={**self.headers, **(headers or {})}, **kwargs
        )
        return Reply(response)
