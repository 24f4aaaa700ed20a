"""The pure codecs, unit-tested directly: list cursor, JSON merge patch, credential redaction.

The cursor and the merge are private to their modules (the API reaches them only through a
request); they are imported here because a codec is proven best on its own inputs.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from task_manager.api.tasks import _merge
from task_manager.errors import ValidationFailed
from task_manager.logging import redact
from task_manager.models import Priority, Sort, Status, Task
from task_manager.settings import SECRET_FIELDS, Settings
from task_manager.storage.repository import _Cursor

CREATED = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def task(due_at: datetime | None) -> Task:
    return Task(
        id=uuid.uuid4(),
        title="t",
        description=None,
        status=Status.TODO,
        priority=Priority.NORMAL,
        due_at=due_at,
        labels=[],
        created_at=CREATED,
        updated_at=CREATED,
        version=1,
    )


# --- Cursor ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("due_at", [None, CREATED + timedelta(days=3)])
def test_a_cursor_decodes_to_the_position_of_the_task_it_was_made_from(
    sort: Sort, due_at: datetime | None
) -> None:
    item = task(due_at)
    cursor = _Cursor.encode(sort, item)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)  # URL-safe, unpadded: fits a query as is
    by_due = sort in (Sort.DUE_AT, Sort.DUE_AT_DESC)
    value = due_at if by_due else CREATED
    assert _Cursor.decode(sort, cursor) == (value is None, value, str(item.id))


def test_a_cursor_position_is_in_utc_whatever_offset_it_was_written_with() -> None:
    raw = json.dumps(["due_at", False, "2030-01-02T05:04:05+02:00", str(uuid.uuid4())])
    cursor = base64.urlsafe_b64encode(raw.encode()).decode()
    _, when, _ = _Cursor.decode(Sort.DUE_AT, cursor)
    assert when == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert when is not None
    assert when.utcoffset() == timedelta(0)


def _encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _Cursor.encode(Sort.DUE_AT, task(None)),  # made for another sort order
        "garbage!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        _encoded({"sort": "created_at"}),
        _encoded(["created_at", False, "2030-01-01T00:00:00Z"]),
        _encoded(["created_at", False, "yesterday", str(uuid.uuid4())]),
        _encoded(["created_at", False, "2030-01-01T00:00:00Z", "not-a-uuid"]),
        _encoded(["created_at", False, 12, str(uuid.uuid4())]),
    ],
)
def test_a_cursor_not_issued_for_this_sort_order_is_a_422_on_the_cursor_parameter(
    cursor: str,
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        _Cursor.decode(Sort.CREATED_AT, cursor)
    assert raised.value.status == 422
    assert [e["parameter"] for e in raised.value.extensions["errors"]] == ["cursor"]


# --- JSON merge patch: the examples of RFC 7396, appendix A -----------------------------------

RFC_7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_merge_patch_gives_the_results_of_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    before = json.dumps(target)
    assert _merge(target, patch) == result
    assert json.dumps(target) == before  # the stored task it patches is not modified


# --- Redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer abc.def-123", "Bearer abc.def-123"),
        ("sent bearer s3cr3t to the upstream", "s3cr3t"),
        ("headers {'Authorization': 'Basic dXNlcjpwYXNz'}", "Basic dXNlcjpwYXNz"),
        ("token=tkn-1 rejected", "tkn-1"),
        ('{"token": "tkn-2"}', "tkn-2"),
        ("cannot reach postgresql://app:hunter2@db:5432/tasks", "hunter2"),
    ],
)
def test_log_redaction_masks_the_credential_and_keeps_the_rest(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert "<redacted>" in cleaned
    assert cleaned.split("<redacted>")[0] == line.split(secret)[0]


def test_log_redaction_leaves_a_line_without_credentials_alone() -> None:
    line = "GET /api/v1/tasks?label=tokens 200 in 3 ms from postgresql://db:5432/tasks"
    assert redact(line) == line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://app:hunter2@db.internal:5432/tasks",
            "postgresql://<redacted>@db.internal:5432/tasks",
        ),
        ("postgresql://db.internal/tasks", "postgresql://db.internal/tasks"),
        ("sqlite:////var/lib/task-manager/tasks.db", "sqlite:////var/lib/task-manager/tasks.db"),
        ("no-scheme-at-all", "<redacted>"),
    ],
)
def test_check_config_shows_where_the_database_is_but_not_its_credentials(
    url: str, shown: str
) -> None:
    settings = Settings.from_env({"TASK_MANAGER_DATABASE_URL": url, "TASK_MANAGER_AUTH_TOKENS": ""})
    assert settings.redacted()["TASK_MANAGER_DATABASE_URL"] == shown


def test_check_config_redacts_every_secret_field_and_only_those() -> None:
    settings = Settings.from_env(
        {
            "TASK_MANAGER_DATABASE_URL": "postgresql://app:db-pass@db/tasks",
            "TASK_MANAGER_AUTH_TOKENS": "alice:a-token",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=collector-key",
            "TASK_MANAGER_LOG_LEVEL": "debug",
        }
    )
    declared = {k for k, v in settings.model_dump().items() if isinstance(v, SecretStr)}
    assert declared == {"database_url", "auth_tokens", "otel_exporter_otlp_headers"}
    assert declared >= SECRET_FIELDS
    shown = settings.redacted()
    for secret in ("db-pass", "a-token", "collector-key"):
        assert secret not in "".join(shown.values())
    assert shown["TASK_MANAGER_AUTH_TOKENS"] == shown["OTEL_EXPORTER_OTLP_HEADERS"] == "<redacted>"
    assert shown["TASK_MANAGER_LOG_LEVEL"] == "DEBUG"
