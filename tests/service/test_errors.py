"""Every error is RFC 9457 problem+json; bad input never yields a 5xx or a partial write."""

from __future__ import annotations

import uuid

import pytest
import requests
from support.app import AppClient, Reply
from support.client import Client, unique_label
from support.service import Service

PROBLEM = "application/problem+json"


def assert_problem(response: Reply | requests.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert "Traceback" not in response.text
    return body


def test_malformed_json_gets_400(alice: AppClient) -> None:
    response = alice.post(
        "/api/v1/tasks", data=b'{"title": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


def test_nan_is_not_accepted_as_json(alice: AppClient) -> None:
    response = alice.post(
        "/api/v1/tasks", data=b'{"title": NaN}', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("path", ["/nope", "/api/v1/tasks/not-a-uuid", "/api/v2/tasks"])
def test_unknown_routes_get_404_problem(alice: AppClient, path: str) -> None:
    assert_problem(alice.get(path), 404)


def test_unknown_task_id_gets_404_problem(alice: AppClient) -> None:
    assert_problem(alice.get("/api/v1/tasks/00000000-0000-4000-8000-000000000000"), 404)


def test_wrong_method_gets_405_problem_with_allow(alice: AppClient) -> None:
    response = alice.request("PUT", "/api/v1/tasks")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_oversized_body_gets_413_problem(http_alice: Client) -> None:
    huge = b'{"title": "' + b"x" * 1_100_000 + b'"}'
    response = http_alice.post(
        "/api/v1/tasks", data=huge, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413)


def test_wrong_content_type_gets_415_problem(alice: AppClient) -> None:
    response = alice.post(
        "/api/v1/tasks",
        data="title=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)


def test_patch_with_text_plain_gets_415_with_accept_patch(alice: AppClient) -> None:
    task = alice.create()
    response = alice.patch(
        f"/api/v1/tasks/{task['id']}", data="{}", headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415)
    assert response.headers["Accept-Patch"] == "application/merge-patch+json"


def test_invalid_fields_get_422_with_one_json_pointer_each(alice: AppClient) -> None:
    response = alice.post(
        "/api/v1/tasks",
        json={
            "title": "",
            "status": "blocked",
            "due_at": "tomorrow",
            "labels": ["ok"] * 21,
            "owner": "mallory",
        },
    )
    body = assert_problem(response, 422)
    pointers = {error["pointer"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert pointers == {"/title", "/status", "/due_at", "/labels", "/owner"}


def test_invalid_label_pointer_names_the_array_index(alice: AppClient) -> None:
    body = assert_problem(
        alice.post("/api/v1/tasks", json={"title": "t", "labels": ["ok", ""]}), 422
    )
    assert body["errors"][0]["pointer"] == "/labels/1"  # type: ignore[index]


def test_due_at_without_a_timezone_is_rejected(alice: AppClient) -> None:
    response = alice.post("/api/v1/tasks", json={"title": "t", "due_at": "2030-01-01T00:00:00"})
    assert_problem(response, 422)


def test_bad_query_parameters_get_422_naming_the_parameter(alice: AppClient) -> None:
    body = assert_problem(alice.get("/api/v1/tasks", params={"limit": "101"}), 422)
    assert body["errors"] == [{"parameter": "limit", "detail": body["errors"][0]["detail"]}]  # type: ignore[index]
    assert_problem(alice.get("/api/v1/tasks", params={"cursor": "garbage!"}), 422)
    assert_problem(alice.get("/api/v1/tasks", params={"sort": "title"}), 422)


def test_patch_that_would_make_the_task_invalid_is_rejected_without_a_write(
    alice: AppClient,
) -> None:
    task = alice.create(title="keep me")
    path = f"/api/v1/tasks/{task['id']}"
    body = assert_problem(alice.patch(path, json={"title": None, "priority": "urgent"}), 422)
    assert {e["pointer"] for e in body["errors"]} == {"/title", "/priority"}  # type: ignore[attr-defined]
    assert_problem(alice.patch(path, json={"id": "00000000-0000-4000-8000-000000000000"}), 422)
    assert_problem(alice.patch(path, json=["not", "an", "object"]), 422)
    current = alice.get(path).json()
    assert current == task


def test_rejected_create_writes_nothing(alice: AppClient) -> None:
    label = unique_label()
    assert_problem(alice.post("/api/v1/tasks", json={"title": "x" * 201, "labels": [label]}), 422)
    assert alice.get("/api/v1/tasks", params={"label": label}).json()["items"] == []


def test_problem_responses_are_counted_under_one_route_label_for_unknown_paths(
    api: Service, http_alice: Client
) -> None:
    for i in range(3):
        http_alice.get(f"/random/path/{i}")
    metrics = requests.get(api.metrics_url, timeout=5).text
    assert "/random/path" not in metrics
    assert 'route="unmatched"' in metrics


def test_nul_characters_are_rejected_with_422_not_stored(alice: AppClient) -> None:
    body = assert_problem(alice.post("/api/v1/tasks", json={"title": "a\u0000b"}), 422)
    assert body["errors"][0]["pointer"] == "/title"  # type: ignore[index]
    task = alice.create()
    patch = alice.patch(f"/api/v1/tasks/{task['id']}", json={"description": "x\u0000"})
    assert_problem(patch, 422)


def test_idempotency_key_with_control_characters_is_rejected(alice: AppClient) -> None:
    response = alice.post("/api/v1/tasks", json={"title": "t"}, headers={"Idempotency-Key": "a\tb"})
    body = assert_problem(response, 422)
    assert body["errors"] == [  # type: ignore[index]
        {"parameter": "Idempotency-Key", "detail": "Must be 1 to 255 printable ASCII."}
    ]
    too_long = {"Idempotency-Key": "k" * 256}
    assert_problem(alice.post("/api/v1/tasks", json={"title": "t"}, headers=too_long), 422)
    longest = {"Idempotency-Key": uuid.uuid4().hex + "k" * 223}
    assert alice.post("/api/v1/tasks", json={"title": "t"}, headers=longest).status_code == 201


def test_due_at_that_overflows_utc_is_rejected_with_422(alice: AppClient) -> None:
    response = alice.post(
        "/api/v1/tasks", json={"title": "t", "due_at": "0001-01-01T00:00:00+01:00"}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["pointer"] == "/due_at"  # type: ignore[index]
    extreme = alice.post("/api/v1/tasks", json={"title": "t", "due_at": "9999-12-31T23:59:59Z"})
    assert extreme.status_code == 201
    assert alice.get(extreme.headers["Location"]).json()["due_at"] == "9999-12-31T23:59:59Z"
