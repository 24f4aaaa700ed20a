"""Clients of the task API as one principal: over HTTP (Client) or in-process (support.app)."""

from __future__ import annotations

import uuid
from typing import Any

import requests


class TaskApi:
    """The verbs and `create` on top of the one `request` a client implements."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def create(self, **fields: object) -> dict[str, Any]:
        response = self.post("/api/v1/tasks", json={"title": "a task", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


class Client(TaskApi):
    """requests against one service as one principal."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base_url + path, **kwargs)  # type: ignore[arg-type]


def unique_label() -> str:
    """A label no other test uses, to scope list queries to one test's tasks."""
    return "t-" + uuid.uuid4().hex[:12]
