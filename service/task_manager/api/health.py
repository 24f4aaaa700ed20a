"""Probes: /livez (the process answers) and /readyz (database reachable, schema at head, not
draining). Cheap, not traced and not access-logged."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, json

from task_manager.runtime import runtime

blueprint = Blueprint("health", __name__)


def _reply(status: int, body: dict[str, object]) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/livez")
def livez() -> Response:
    return _reply(200, {"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    state = runtime(current_app)
    checks = state.readiness()
    ready = all(value == "ok" for value in checks.values())
    return _reply(
        200 if ready else 503, {"status": "ok" if ready else "unavailable", "checks": checks}
    )
