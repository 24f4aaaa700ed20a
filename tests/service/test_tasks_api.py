"""The task API, against SQLite and PostgreSQL: in-process (alice), and over HTTP on a real server
(http_alice) where requests must run concurrently on waitress' threads."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from support.app import AppClient
from support.client import Client, unique_label


def test_post_returns_201_with_location_etag_and_the_stored_task(alice: AppClient) -> None:
    response = alice.post(
        "/api/v1/tasks",
        json={
            "title": "Write the runbook",
            "description": "for the on-call rotation",
            "priority": "high",
            "due_at": "2030-01-02T03:04:05+02:00",
            "labels": ["ops", "docs"],
        },
    )
    assert response.status_code == 201
    task = response.json()
    assert response.headers["Location"] == f"/api/v1/tasks/{task['id']}"
    assert response.headers["ETag"] == '"1"'
    assert task["status"] == "todo"
    assert task["due_at"] == "2030-01-02T01:04:05Z"
    assert task["labels"] == ["ops", "docs"]
    assert task["version"] == 1
    fetched = alice.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == task


def test_get_with_matching_if_none_match_returns_304(alice: AppClient) -> None:
    task = alice.create()
    first = alice.get(f"/api/v1/tasks/{task['id']}")
    again = alice.get(
        f"/api/v1/tasks/{task['id']}", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [('W/"1"', 304), ("*", 304), ('"7", "1"', 304), ('"2"', 200), ('W/"2"', 200)],
)
def test_if_none_match_compares_weakly(alice: AppClient, if_none_match: str, status: int) -> None:
    task = alice.create()
    response = alice.get(f"/api/v1/tasks/{task['id']}", headers={"If-None-Match": if_none_match})
    assert response.status_code == status
    assert response.headers["ETag"] == '"1"'


@pytest.mark.parametrize(
    ("if_match", "status"), [('"1"', 200), ("*", 200), ('"7", "1"', 200), ('W/"1"', 412)]
)
def test_if_match_compares_strongly(alice: AppClient, if_match: str, status: int) -> None:
    task = alice.create()
    response = alice.patch(
        f"/api/v1/tasks/{task['id']}", json={"title": "new"}, headers={"If-Match": if_match}
    )
    assert response.status_code == status, response.text
    assert response.headers["ETag"] == ('"2"' if status == 200 else '"1"')


def test_patch_merges_fields_and_bumps_version_and_etag(alice: AppClient) -> None:
    task = alice.create(description="old", labels=["a"], due_at="2031-01-01T00:00:00Z")
    response = alice.patch(
        f"/api/v1/tasks/{task['id']}",
        json={"status": "in_progress", "description": None, "labels": ["b", "c"]},
        headers={"Content-Type": "application/merge-patch+json", "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["status"] == "in_progress"
    assert patched["description"] is None
    assert patched["labels"] == ["b", "c"]
    assert patched["due_at"] == "2031-01-01T00:00:00Z"
    assert patched["title"] == task["title"]
    assert patched["version"] == 2
    assert response.headers["ETag"] == '"2"'


def test_patch_with_null_clears_every_optional_field(alice: AppClient) -> None:
    task = alice.create(description="old", due_at="2031-01-01T00:00:00Z")
    response = alice.patch(
        f"/api/v1/tasks/{task['id']}",
        json={"description": None, "due_at": None},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["description"], response.json()["due_at"]) == (None, None)
    again = alice.patch(f"/api/v1/tasks/{task['id']}", json={"due_at": None})
    assert again.status_code == 200, again.text
    assert again.json()["version"] == 3


def test_patch_with_stale_etag_returns_412_and_leaves_the_task_unchanged(alice: AppClient) -> None:
    task = alice.create()
    assert alice.patch(f"/api/v1/tasks/{task['id']}", json={"title": "v2"}).status_code == 200
    stale = alice.patch(
        f"/api/v1/tasks/{task['id']}", json={"title": "lost update"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.headers["Content-Type"] == "application/problem+json"
    assert alice.get(f"/api/v1/tasks/{task['id']}").json()["title"] == "v2"


def test_patch_with_invalid_body_and_stale_etag_returns_422(alice: AppClient) -> None:
    task = alice.create()
    assert alice.patch(f"/api/v1/tasks/{task['id']}", json={"title": "v2"}).status_code == 200
    response = alice.patch(
        f"/api/v1/tasks/{task['id']}",
        json={"title": "v3", "priority": "urgent-ish"},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "ETag" not in response.headers
    current = alice.get(f"/api/v1/tasks/{task['id']}").json()
    assert current["title"] == "v2"
    assert current["version"] == 2


def test_two_concurrent_patches_with_the_same_if_match_exactly_one_wins(
    http_alice: Client,
) -> None:
    for _round in range(3):
        task = http_alice.create()
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def patch(title: str) -> None:
            client = Client(http_alice.base_url, None)
            client.session.headers.update(http_alice.session.headers)
            barrier.wait()
            response = client.patch(
                f"/api/v1/tasks/{task['id']}", json={"title": title}, headers={"If-Match": '"1"'}
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=patch, args=(f"writer {i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(statuses) == [200, 412]
        assert http_alice.get(f"/api/v1/tasks/{task['id']}").json()["version"] == 2


def test_delete_returns_204_and_then_the_task_is_gone(alice: AppClient) -> None:
    task = alice.create(labels=["x"])
    assert alice.delete(f"/api/v1/tasks/{task['id']}").status_code == 204
    assert alice.get(f"/api/v1/tasks/{task['id']}").status_code == 404
    assert alice.delete(f"/api/v1/tasks/{task['id']}").status_code == 404


def test_delete_with_stale_if_match_returns_412(alice: AppClient) -> None:
    task = alice.create()
    alice.patch(f"/api/v1/tasks/{task['id']}", json={"priority": "low"})
    response = alice.delete(f"/api/v1/tasks/{task['id']}", headers={"If-Match": '"1"'})
    assert response.status_code == 412
    assert response.headers["ETag"] == '"2"'
    assert alice.get(f"/api/v1/tasks/{task['id']}").status_code == 200
    current = alice.delete(f"/api/v1/tasks/{task['id']}", headers={"If-Match": '"2"'})
    assert current.status_code == 204


def test_idempotency_key_replay_returns_the_stored_response_without_a_second_task(
    alice: Client,
) -> None:
    label = unique_label()
    key = str(uuid.uuid4())
    body = {"title": "pay the invoice", "labels": [label]}
    first = alice.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
    replay = alice.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Location"] == first.headers["Location"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    listed = alice.get("/api/v1/tasks", params={"label": label}).json()
    assert len(listed["items"]) == 1


def test_idempotency_key_reused_with_a_different_body_returns_422(alice: AppClient) -> None:
    key = str(uuid.uuid4())
    alice.post("/api/v1/tasks", json={"title": "one"}, headers={"Idempotency-Key": key})
    other = alice.post("/api/v1/tasks", json={"title": "two"}, headers={"Idempotency-Key": key})
    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"


def test_concurrent_posts_with_one_idempotency_key_create_one_task(http_alice: Client) -> None:
    label = unique_label()
    key = str(uuid.uuid4())
    barrier = threading.Barrier(4)
    responses: list[requests.Response] = []

    def post() -> None:
        client = Client(http_alice.base_url, None)
        client.session.headers.update(http_alice.session.headers)
        barrier.wait()
        responses.append(
            client.post(
                "/api/v1/tasks",
                json={"title": "once", "labels": [label]},
                headers={"Idempotency-Key": key},
            )
        )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(http_alice.get("/api/v1/tasks", params={"label": label}).json()["items"]) == 1


def test_list_pages_with_next_cursor_and_link_header_until_the_end(alice: AppClient) -> None:
    label = unique_label()
    created = [alice.create(title=f"task {i}", labels=[label])["id"] for i in range(7)]
    seen: list[str] = []
    path = f"/api/v1/tasks?label={label}&limit=3"
    pages = 0
    while path:
        response = alice.get(path)
        assert response.status_code == 200
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            assert "Link" not in response.headers
            break
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"')
        assert f"cursor={page['next_cursor']}" in link
        path = link[1 : link.index(">")]
    assert pages == 3
    assert seen == created


def test_list_filters_by_status_priority_and_label(alice: AppClient) -> None:
    label = unique_label()
    alice.create(title="a", labels=[label], status="done", priority="high")
    alice.create(title="b", labels=[label], status="done", priority="low")
    alice.create(title="c", labels=[label], status="todo", priority="high")
    alice.create(title="d", labels=["other"], status="done", priority="high")

    def titles(**params: str) -> list[str]:
        page = alice.get("/api/v1/tasks", params={"label": label, **params}).json()
        return sorted(item["title"] for item in page["items"])

    assert titles() == ["a", "b", "c"]
    assert titles(status="done") == ["a", "b"]
    assert titles(status="done", priority="high") == ["a"]


def test_list_sorts_by_due_at_with_undated_tasks_last_across_pages(alice: AppClient) -> None:
    label = unique_label()
    alice.create(title="undated-1", labels=[label])
    alice.create(title="late", labels=[label], due_at="2032-01-01T00:00:00Z")
    alice.create(title="undated-2", labels=[label])
    alice.create(title="early", labels=[label], due_at="2030-01-01T00:00:00Z")
    alice.create(title="middle", labels=[label], due_at="2031-01-01T00:00:00Z")

    def walk(sort: str) -> list[str]:
        titles: list[str] = []
        cursor = None
        while True:
            params = {"label": label, "sort": sort, "limit": "2"}
            if cursor:
                params["cursor"] = cursor
            page = alice.get("/api/v1/tasks", params=params).json()
            titles += [item["title"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return titles

    ascending = walk("due_at")
    assert ascending[:3] == ["early", "middle", "late"]
    assert sorted(ascending[3:]) == ["undated-1", "undated-2"]
    descending = walk("-due_at")
    assert descending[:3] == ["late", "middle", "early"]
    assert sorted(descending[3:]) == ["undated-1", "undated-2"]
    newest_first = walk("-created_at")
    assert newest_first == ["middle", "early", "undated-2", "late", "undated-1"]


def test_a_cursor_from_another_sort_order_is_rejected_with_422(alice: AppClient) -> None:
    label = unique_label()
    for i in range(2):
        alice.create(title=str(i), labels=[label])
    cursor = alice.get("/api/v1/tasks", params={"label": label, "limit": "1"}).json()["next_cursor"]
    response = alice.get("/api/v1/tasks", params={"cursor": cursor, "sort": "due_at"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "cursor"


def test_duplicate_labels_are_stored_once(alice: AppClient) -> None:
    task = alice.create(labels=["same", "same", "other"])
    assert task["labels"] == ["same", "other"]
