"""Request and response models (pydantic v2); the OpenAPI document is generated from them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints


class Status(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Sort(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"


# No NUL characters: PostgreSQL text cannot store them, and no client means them.
_NO_NUL = r"^[^\x00]*$"
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_NUL)]
Description = Annotated[str, StringConstraints(max_length=10_000, pattern=_NO_NUL)]
Label = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
]
Labels = Annotated[list[Label], Field(max_length=20)]
# The Idempotency-Key request header of POST /api/v1/tasks.
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$")
]


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("the instant is outside the years 1 to 9999 in UTC") from None


DueAt = Annotated[AwareDatetime, AfterValidator(_to_utc)]

_STRICT = ConfigDict(extra="forbid", use_enum_values=False)


class TaskCreate(BaseModel):
    """Body of POST /api/v1/tasks."""

    model_config = _STRICT

    title: Title
    description: Description | None = None
    status: Status = Status.TODO
    priority: Priority = Priority.NORMAL
    due_at: DueAt | None = Field(default=None, description="RFC 3339 date-time.")
    labels: Labels = Field(default_factory=list, description="Up to 20 short labels.")


class TaskFields(BaseModel):
    """The writable state of a task after a merge patch has been applied to it.

    A merge patch removes the members it sets to null, so every nullable field defaults to None:
    without the default, a PATCH clearing the field would be rejected as missing it (test_models).
    """

    model_config = _STRICT

    title: Title
    description: Description | None = None
    status: Status
    priority: Priority
    due_at: DueAt | None = None
    labels: Labels


class TaskPatch(BaseModel):
    """JSON merge patch (RFC 7396) of a task: members present replace, null removes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"description": "JSON merge patch (RFC 7396) of a task."},
    )

    title: Title | None = None
    description: Description | None = None
    status: Status | None = None
    priority: Priority | None = None
    due_at: DueAt | None = None
    labels: Labels | None = None


class Task(BaseModel):
    """A stored task."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    title: Title
    description: Description | None
    status: Status
    priority: Priority
    due_at: datetime | None
    labels: list[str]
    created_at: datetime
    updated_at: datetime
    version: int = Field(ge=1)


class TaskPage(BaseModel):
    """One page of GET /api/v1/tasks."""

    items: list[Task]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ListQuery(BaseModel):
    """Query parameters of GET /api/v1/tasks; unknown parameters are rejected (typos show)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None, max_length=512, description="`next_cursor` of the previous page."
    )
    status: Status | None = None
    priority: Priority | None = None
    label: Label | None = None
    sort: Sort = Sort.CREATED_AT


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = Field(
        default=None,
        description="For 422: one entry per bad field with a JSON `pointer` (body) or a "
        "`parameter` name (query) and a `detail`.",
    )


class Health(BaseModel):
    """Body of /livez and /readyz."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)
