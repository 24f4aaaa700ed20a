"""Domain errors and the one renderer that turns every error into RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


class ProblemError(Exception):
    """An error the client caused or may act on; rendered as problem+json with ``status``."""

    status: int = 400

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})


class BadRequest(ProblemError):
    status = 400


class Unauthorized(ProblemError):
    status = 401


class NotFound(ProblemError):
    status = 404


class PreconditionFailed(ProblemError):
    status = 412


class UnsupportedMediaType(ProblemError):
    status = 415


class ServiceUnavailable(ProblemError):
    """A dependency (the database) is unreachable or busy; the client may retry later."""

    status = 503


class InsufficientStorage(ProblemError):
    """The database has no space left for the write; reads still work."""

    status = 507


class ValidationFailed(ProblemError):
    """422 with one entry per bad field: ``{"pointer": "/title", "detail": "..."}``."""

    status = 422

    def __init__(self, detail: str, errors: Sequence[Mapping[str, str]]) -> None:
        super().__init__(detail, extensions={"errors": [dict(e) for e in errors]})

    @classmethod
    def from_pydantic(cls, exc: ValidationError, *, where: str = "pointer") -> ValidationFailed:
        """Maps pydantic errors to JSON pointers (request body) or parameter names (query)."""
        errors = []
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            parts = [str(p) for p in error["loc"]]
            if where == "pointer":
                location = "".join("/" + _escape_pointer(p) for p in parts)
            else:
                location = parts[0] if parts else ""
            errors.append({where: location, "detail": error["msg"]})
        return cls("The request has invalid fields.", errors)


def _escape_pointer(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def problem(
    status: int,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """Builds a problem+json response (type about:blank, title = the HTTP reason phrase)."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase}
    body["status"] = status
    if detail:
        body["detail"] = detail
    body.update(extensions or {})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Routes every error, ours or werkzeug's or unexpected, to the problem renderer."""

    @app.errorhandler(ProblemError)
    def _domain(exc: ProblemError) -> Response:
        return problem(exc.status, exc.detail, headers=exc.headers, extensions=exc.extensions)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers: dict[str, str] = {}
        if status == 405:
            allowed = getattr(exc, "valid_methods", None) or []
            headers["Allow"] = ", ".join(sorted(allowed))
        return problem(status, exc.description, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "The server failed to handle the request.")
