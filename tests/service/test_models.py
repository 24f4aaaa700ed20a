"""The request models on their own: rules that no single API call would show."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter, ValidationError
from task_manager.models import IdempotencyKey, TaskFields

# A valid value for every writable field.
_FULL = {
    "title": "t",
    "description": "d",
    "status": "todo",
    "priority": "low",
    "due_at": "2030-01-01T00:00:00Z",
    "labels": ["a"],
}


def _validate(document: dict[str, object]) -> TaskFields:
    return TaskFields.model_validate_json(json.dumps(document), strict=True)


def test_every_nullable_writable_field_may_be_absent_as_a_merge_patch_leaves_it() -> None:
    # PATCH {"field": null} removes the member (RFC 7396) before TaskFields validates the result:
    # a nullable field without a default would turn every such PATCH into a 422.
    assert set(_FULL) == set(TaskFields.model_fields)
    nullable = []
    for name in _FULL:
        try:
            _validate({**_FULL, name: None})
        except ValidationError:
            continue
        nullable.append(name)
        removed = {key: value for key, value in _FULL.items() if key != name}
        assert getattr(_validate(removed), name) is None, name
    assert {"description", "due_at"} <= set(nullable)


@pytest.mark.parametrize("name", ["title", "status", "priority", "labels"])
def test_a_missing_required_writable_field_is_still_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        _validate({key: value for key, value in _FULL.items() if key != name})
    assert [error["loc"] for error in excinfo.value.errors()] == [(name,)]


def test_an_idempotency_key_is_1_to_255_printable_ascii_characters() -> None:
    key: TypeAdapter[str] = TypeAdapter(IdempotencyKey)

    def valid(value: str) -> bool:
        try:
            key.validate_python(value)
        except ValidationError:
            return False
        return True

    # Header values arrive as latin-1: every one of those characters, alone.
    for code in range(256):
        assert valid(chr(code)) == (chr(code).isascii() and chr(code).isprintable()), code
    assert [valid("k" * n) for n in (0, 1, 255, 256)] == [False, True, True, False]
    assert not valid("key\n")
