"""The benchmark baseline: a plain Flask app keeping tasks in a dict, on the same waitress settings.

No auth, no validation beyond a title check, no database, no metrics, no tracing: the floor that
the real service is compared against.
"""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from waitress import serve

app = Flask("baseline")
tasks: dict[str, dict[str, Any]] = {}
lock = threading.Lock()


def _now() -> str:
    return datetime.now(UTC).isoformat()


@app.post("/api/v1/tasks")
def create() -> tuple[Response, int]:
    body = request.get_json()
    if not isinstance(body, dict) or not body.get("title"):
        return jsonify({"error": "title required"}), 422
    task = {
        "id": str(uuid.uuid4()),
        "title": body["title"],
        "description": body.get("description"),
        "status": body.get("status", "todo"),
        "priority": body.get("priority", "normal"),
        "due_at": body.get("due_at"),
        "labels": body.get("labels", []),
        "created_at": _now(),
        "updated_at": _now(),
        "version": 1,
    }
    with lock:
        tasks[task["id"]] = task
    return jsonify(task), 201


@app.get("/api/v1/tasks")
def list_tasks() -> Response:
    limit = int(request.args.get("limit", 20))
    with lock:
        items = list(tasks.values())[:limit]
    return jsonify({"items": items, "next_cursor": None})


@app.get("/api/v1/tasks/<task_id>")
def get(task_id: str) -> tuple[Response, int]:
    task = tasks.get(task_id)
    if task is None:
        return jsonify({"error": "not found"}), 404
    return jsonify(task), 200


@app.patch("/api/v1/tasks/<task_id>")
def patch(task_id: str) -> tuple[Response, int]:
    body = request.get_json()
    with lock:
        task = tasks.get(task_id)
        if task is None:
            return jsonify({"error": "not found"}), 404
        task.update({k: v for k, v in body.items() if k in ("title", "status", "priority")})
        task["version"] += 1
        task["updated_at"] = _now()
    return jsonify(task), 200


@app.get("/readyz")
def readyz() -> Response:
    return jsonify({"status": "ok"})


def serve_from_argv(wsgi_app: Flask, ident: str) -> None:
    """Serves on 127.0.0.1:ARGV[1] with ARGV[2] threads and the waitress settings of
    task_manager.server."""
    serve(
        wsgi_app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        threads=int(sys.argv[2]),
        ident=ident,
        channel_timeout=60,
        connection_limit=1000,
        clear_untrusted_proxy_headers=True,
    )


if __name__ == "__main__":
    serve_from_argv(app, "baseline")
