"""The OpenAPI 3.1 document, generated from the pydantic models and served at /openapi.json.

docs/openapi.json is the committed copy (`task-manager openapi > docs/openapi.json`); a test fails
when it is stale.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from flask import Blueprint, Response
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from task_manager import __version__
from task_manager.models import (
    Health,
    IdempotencyKey,
    ListQuery,
    ProblemDetail,
    Task,
    TaskCreate,
    TaskPage,
    TaskPatch,
)

blueprint = Blueprint("openapi", __name__)

_REF = "#/components/schemas/{model}"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": _REF.format(model="ProblemDetail")}}
        },
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_ETAG = {"description": "Strong entity tag of the task version.", "schema": {"type": "string"}}
_TASK_ID = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "Apply only if the task still has this ETag (else 412).",
    "schema": {"type": "string"},
}
_AUTH_ERRORS = {"401": _problem("Missing or invalid bearer token.")}
# Storage failures (storage/failures.py): the database away or busy, or, for writes, out of space.
_UNAVAILABLE = {
    "503": {
        **_problem("The database is unreachable or busy; retry after Retry-After seconds."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "required": True}},
    }
}
_READ_ERRORS = _UNAVAILABLE
_WRITE_ERRORS = {**_UNAVAILABLE, "507": _problem("The database has no space left to write.")}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One optional query parameter per field of ``model``, its schema (limits, patterns, enums,
    default) taken from the model's: the model that validates the query is the one source."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    parameters = []
    for name, field in schema["properties"].items():
        field = dict(field)
        field.pop("title", None)
        # An unset parameter is absent, not null: keep the alternative that is not null.
        if "anyOf" in field:
            (value,) = (s for s in field.pop("anyOf") if s != {"type": "null"})
            field = {**value, **field}
            if field.get("default", ...) is None:
                del field["default"]
        # Enums inline, as clients read them in the parameter.
        if "$ref" in field:
            referenced = definitions[field.pop("$ref").rsplit("/", 1)[-1]]
            field = {k: v for k, v in referenced.items() if k != "title"} | field
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if "description" in field:
            parameter["description"] = field.pop("description")
        parameters.append(parameter | {"schema": field})
    return parameters


def build_document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [
            (model, "validation" if model in (TaskCreate, TaskPatch) else "serialization")
            for model in (Task, TaskCreate, TaskPatch, TaskPage, ProblemDetail, Health)
        ],
        ref_template=_REF,
    )
    components = schemas.get("$defs", {})
    task_json = {"application/json": {"schema": _ref("Task")}}
    list_params = _query_parameters(ListQuery)
    health = {"application/json": {"schema": _ref("Health")}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Task Manager API",
            "version": __version__,
            "description": "Tasks owned by the authenticated principal. Errors are RFC 9457 "
            "problem details.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/v1/tasks": {
                "post": {
                    "operationId": "createTask",
                    "summary": "Create a task",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Replays return the stored response; the same key "
                            "with a different body is rejected with 422.",
                            "schema": TypeAdapter(IdempotencyKey).json_schema(),
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("TaskCreate")}},
                    },
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {
                                "Location": {"schema": {"type": "string"}, "required": True},
                                "ETag": _ETAG,
                            },
                            "content": task_json,
                        },
                        "400": _problem("Malformed JSON."),
                        **_AUTH_ERRORS,
                        "413": _problem("Body larger than the configured limit."),
                        "415": _problem("Content-Type is not application/json."),
                        "422": _problem("Invalid fields (one JSON pointer per field)."),
                        **_WRITE_ERRORS,
                    },
                },
                "get": {
                    "operationId": "listTasks",
                    "summary": "List tasks (keyset pagination)",
                    "parameters": list_params,
                    "responses": {
                        "200": {
                            "description": 'A page of tasks; `Link: <...>; rel="next"` when '
                            "there are more.",
                            "headers": {"Link": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": _ref("TaskPage")}},
                        },
                        **_AUTH_ERRORS,
                        "422": _problem("Invalid query parameter."),
                        **_READ_ERRORS,
                    },
                },
            },
            "/api/v1/tasks/{task_id}": {
                "parameters": [_TASK_ID],
                "get": {
                    "operationId": "getTask",
                    "summary": "Get a task",
                    "parameters": [
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The task.",
                            "headers": {"ETag": _ETAG},
                            "content": task_json,
                        },
                        "304": {"description": "Not modified.", "headers": {"ETag": _ETAG}},
                        **_AUTH_ERRORS,
                        "404": _problem("No such task for this principal."),
                        **_READ_ERRORS,
                    },
                },
                "patch": {
                    "operationId": "updateTask",
                    "summary": "Update a task with a JSON merge patch (RFC 7396)",
                    "parameters": [_IF_MATCH],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/merge-patch+json": {"schema": _ref("TaskPatch")},
                            "application/json": {"schema": _ref("TaskPatch")},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The updated task.",
                            "headers": {"ETag": _ETAG},
                            "content": task_json,
                        },
                        "400": _problem("Malformed JSON."),
                        **_AUTH_ERRORS,
                        "404": _problem("No such task for this principal."),
                        "412": _problem("If-Match does not match the current version."),
                        "413": _problem("Body larger than the configured limit."),
                        "415": _problem("Unsupported Content-Type."),
                        "422": _problem("The patched task would be invalid."),
                        **_WRITE_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "deleteTask",
                    "summary": "Delete a task",
                    "parameters": [_IF_MATCH],
                    "responses": {
                        "204": {"description": "Deleted."},
                        **_AUTH_ERRORS,
                        "404": _problem("No such task for this principal."),
                        "412": _problem("If-Match does not match the current version."),
                        **_WRITE_ERRORS,
                    },
                },
            },
            "/livez": {
                "get": {
                    "operationId": "livez",
                    "summary": "Liveness probe",
                    "security": [],
                    "responses": {"200": {"description": "Alive.", "content": health}},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness probe (database, schema at head, not draining)",
                    "security": [],
                    "responses": {
                        "200": {"description": "Ready.", "content": health},
                        "503": {"description": "Not ready.", "content": health},
                    },
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


@cache
def document_json() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=False) + "\n"


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    return Response(document_json(), mimetype="application/json")
