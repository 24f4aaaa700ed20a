"""/api/v1/tasks: handler -> validated model -> repository call -> response model."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from pydantic import TypeAdapter, ValidationError
from werkzeug.http import quote_etag

from task_manager.auth import current_principal
from task_manager.errors import (
    BadRequest,
    PreconditionFailed,
    UnsupportedMediaType,
    ValidationFailed,
)
from task_manager.metrics import Metrics
from task_manager.models import IdempotencyKey, ListQuery, Task, TaskCreate, TaskFields
from task_manager.runtime import runtime
from task_manager.storage import TaskRepository
from task_manager.storage.repository import request_hash

blueprint = Blueprint("tasks", __name__, url_prefix="/api/v1")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
_UPDATE_RETRIES = 5
_IDEMPOTENCY_KEY: TypeAdapter[str] = TypeAdapter(IdempotencyKey)


def _repo_and_metrics() -> tuple[TaskRepository, Metrics]:
    state = runtime(current_app)
    return state.repository, state.metrics


def _tag(task: Task) -> str:
    """The task's entity tag, unquoted: its version. Always strong."""
    return str(task.version)


def _task_response(task: Task, status: int = 200) -> Response:
    response = Response(task.model_dump_json(), status=status, mimetype=JSON)
    response.set_etag(_tag(task))
    return response


def _reject_nan(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _json_body(*accepted: str) -> Any:
    mimetype = request.mimetype
    if mimetype not in accepted:
        raise UnsupportedMediaType(
            f"Content-Type must be {' or '.join(accepted)}.",
            headers={"Accept-Patch": MERGE_PATCH} if MERGE_PATCH in accepted else None,
        )
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw, parse_constant=_reject_nan)
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not valid JSON.") from None


def _validate(model: type[Any], data: Any, raw: bytes | None = None) -> Any:
    """Strict JSON-mode validation: a timestamp must be an RFC 3339 string, not a number.

    ``raw``, when given, is the request body ``data`` was parsed from: validated as it came,
    without serialising ``data`` again.
    """
    try:
        return model.model_validate_json(json.dumps(data) if raw is None else raw, strict=True)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


def _expected_version(current: Task) -> int:
    """The version an If-Match names (strong comparison, RFC 9110 13.1.1: a weak tag never
    matches), or the current one without If-Match; 412 when it names another."""
    if "If-Match" not in request.headers or request.if_match.contains(_tag(current)):
        return current.version
    raise PreconditionFailed(
        "The task was changed since the version in If-Match; fetch it again.",
        headers={"ETag": quote_etag(_tag(current))},
    )


@blueprint.post("/tasks")
def create_task() -> Response:
    body = _json_body(JSON)
    data: TaskCreate = _validate(TaskCreate, body, request.get_data(cache=True))
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        try:
            _IDEMPOTENCY_KEY.validate_python(key)
        except ValidationError:
            raise ValidationFailed(
                "The request has invalid fields.",
                [{"parameter": "Idempotency-Key", "detail": "Must be 1 to 255 printable ASCII."}],
            ) from None
    repository, metrics = _repo_and_metrics()
    created = repository.create(
        current_principal(),
        data,
        idempotency_key=key,
        body_hash=request_hash(body) if key is not None else None,
    )
    if not created.replayed:
        metrics.tasks_created.inc()
    response = _task_response(created.task, 201)
    response.headers["Location"] = url_for("tasks.get_task", task_id=created.task.id)
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.get("/tasks")
def list_tasks() -> Response:
    try:
        query = ListQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, where="parameter") from None
    repository, _ = _repo_and_metrics()
    page = repository.list(current_principal(), query)
    response = Response(page.model_dump_json(), mimetype=JSON)
    if page.next_cursor is not None:
        params: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor"}
        params["cursor"] = page.next_cursor
        response.headers["Link"] = f'<{url_for("tasks.list_tasks", **params)}>; rel="next"'
    return response


@blueprint.get("/tasks/<uuid:task_id>")
def get_task(task_id: uuid.UUID) -> Response:
    repository, _ = _repo_and_metrics()
    task = repository.get(current_principal(), task_id)
    # Weak comparison (RFC 9110 13.1.2): W/"1" matches version 1 too.
    if request.if_none_match.contains_weak(_tag(task)):
        response = Response(status=304)
        response.set_etag(_tag(task))
        return response
    return _task_response(task)


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


@blueprint.patch("/tasks/<uuid:task_id>")
def patch_task(task_id: uuid.UUID) -> Response:
    patch = _json_body(MERGE_PATCH, JSON)
    if not isinstance(patch, dict):
        raise ValidationFailed(
            "The request has invalid fields.",
            [{"pointer": "", "detail": "A merge patch of a task must be a JSON object."}],
        )
    repository, metrics = _repo_and_metrics()
    principal = current_principal()
    for _attempt in range(_UPDATE_RETRIES):
        current = repository.get(principal, task_id)
        writable = current.model_dump(
            mode="json", include=set(TaskFields.model_fields), exclude_none=True
        )
        # The body is validated before If-Match is compared: an invalid request is 422 whatever
        # version it names (RFC 9110 evaluates preconditions only for a request that is otherwise
        # acceptable).
        fields: TaskFields = _validate(TaskFields, _merge(writable, patch))
        expected = _expected_version(current)
        try:
            task = repository.update(principal, task_id, fields, expected, current.labels)
        except PreconditionFailed:
            if "If-Match" in request.headers:
                raise
            continue  # no If-Match: another writer won the race; merge onto the new state
        metrics.tasks_updated.inc()
        return _task_response(task)
    raise PreconditionFailed("The task is being changed concurrently; try again.")


@blueprint.delete("/tasks/<uuid:task_id>")
def delete_task(task_id: uuid.UUID) -> Response:
    repository, metrics = _repo_and_metrics()
    principal = current_principal()
    expected: int | None = None
    if "If-Match" in request.headers:
        expected = _expected_version(repository.get(principal, task_id))
    repository.delete(principal, task_id, expected)
    metrics.tasks_deleted.inc()
    return Response(status=204)
