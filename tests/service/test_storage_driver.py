"""storage/driver.py against SQLAlchemy's Connection.execute, on the same SQLite statements.

Every statement the repository runs on SQLite is executed both ways, on two copies of one
database: the rows read back (types included), the rows changed, the errors raised and the SQL
spans opentelemetry-instrumentation-sqlalchemy records must agree.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, exc, select
from task_manager.models import Sort, TaskCreate
from task_manager.storage import TaskRepository, build_engine
from task_manager.storage import repository as statements
from task_manager.storage.driver import DriverConnection
from task_manager.storage.migrate import upgrade
from task_manager.storage.schema import idempotency_keys, task_labels, tasks

OWNER = "driver-test"
WHEN = datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A database with varied tasks, labels and an idempotency key: the statements' input."""
    path = tmp_path_factory.mktemp("driver") / "seed.db"
    engine = build_engine(f"sqlite:///{path}")
    upgrade(engine)
    repository = TaskRepository(engine)
    ids = [
        str(repository.create(OWNER, TaskCreate(title="plain")).task.id),
        str(
            repository.create(
                OWNER,
                TaskCreate(
                    title="ünïcødé ✓", description="d", due_at=WHEN, labels=["a", "b"],
                    status="done", priority="high",
                ),
                idempotency_key="key-1",
                body_hash="hash-1",
            ).task.id
        ),
        str(repository.create(OWNER, TaskCreate(title="later", due_at=WHEN, labels=["a"])).task.id),
    ]  # fmt: skip
    engine.dispose()
    return path, ids


def _copy(seed: Path, tmp_path: Path, name: str) -> Engine:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(seed, path)
    return build_engine(f"sqlite:///{path}")


def _dump(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(connection.execute(select(table)).all(), key=repr)
            for table in (tasks, task_labels, idempotency_keys)
        }


Run = Callable[[Any], Any]

# (what, statement, parameters): every statement of the repository, each list shape included.
CASES: list[tuple[str, Any, Callable[[list[str]], Any]]] = [
    ("ping", statements._PING, lambda ids: {}),
    ("count", statements._COUNT_BY_STATUS, lambda ids: {}),
    ("get", statements._GET, lambda ids: {"task_id": ids[1], "owner": OWNER}),
    ("get missing", statements._GET, lambda ids: {"task_id": str(uuid.uuid4()), "owner": OWNER}),
    ("version", statements._VERSION, lambda ids: {"task_id": ids[0], "owner": OWNER}),
    ("replay", statements._REPLAY, lambda ids: {"owner": OWNER, "key": "key-1"}),
    *[
        (
            f"list {sort.value} {after}",
            statements._list_statement(
                sort, status=True, priority=True, label=True, after=after
            ),
            lambda ids, after=after: {
                "owner": OWNER, "status": "done", "priority": "high", "label": "a", "limit": 5,
                **({"after_id": "0"} if after else {}),
                **({"after_value": WHEN - timedelta(days=1)} if after == "value" else {}),
            },
        )
        for sort in Sort
        for after in (None, "null", "value")
    ],
    ("list plain", statements._list_statement(
        Sort.CREATED_AT, status=False, priority=False, label=False, after=None
    ), lambda ids: {"owner": OWNER, "limit": 10}),
    ("update", statements._UPDATE, lambda ids: {
        "task_id": ids[1], "match_owner": OWNER, "expected_version": 1,
        "new_title": "changed", "new_description": None, "new_status": "todo",
        "new_priority": "low", "new_due_at": WHEN + timedelta(hours=1), "new_labels": '["c"]',
        "new_updated_at": WHEN + timedelta(days=1),
    }),
    ("update stale", statements._UPDATE, lambda ids: {
        "task_id": ids[1], "match_owner": OWNER, "expected_version": 9, "new_title": "x",
        "new_description": None, "new_status": "todo", "new_priority": "low",
        "new_due_at": None, "new_labels": "[]", "new_updated_at": WHEN,
    }),
    ("insert", statements._INSERT_TASK, lambda ids: {
        "id": str(uuid.uuid4()), "owner": OWNER, "title": "new", "description": None,
        "status": "todo", "priority": "medium", "due_at": None, "labels": "[]",
        "created_at": WHEN, "updated_at": WHEN, "version": 1,
    }),
    ("insert labels", statements._INSERT_LABELS, lambda ids: [
        {"task_id": ids[0], "label": "x"}, {"task_id": ids[0], "label": "y"},
    ]),
    ("delete labels", statements._DELETE_LABELS, lambda ids: {"task_id": ids[1]}),
    ("delete", statements._DELETE, lambda ids: {"task_id": ids[2], "owner": OWNER}),
    ("delete at version", statements._DELETE_AT_VERSION, lambda ids: {
        "task_id": ids[2], "owner": OWNER, "expected_version": 2,
    }),
    ("purge", statements._PURGE, lambda ids: {"older_than": datetime.now(UTC) + timedelta(1)}),
]  # fmt: skip


def _through_sqlalchemy(engine: Engine, statement: Any, params: Any) -> tuple[list[Any], int]:
    with engine.begin() as connection:
        result = connection.execute(statement, params)
        rows = [tuple(row) for row in result.all()] if result.returns_rows else []
        return rows, result.rowcount


def _through_driver(engine: Engine, statement: Any, params: Any) -> tuple[list[Any], int]:
    with engine.connect() as connection:
        driver = DriverConnection(connection)
        with driver.write():
            result = driver.execute(statement, params)
        return result.all(), result.rowcount


@pytest.mark.parametrize("what", [case[0] for case in CASES])
def test_a_statement_reads_and_writes_the_same_as_sqlalchemy(
    what: str, seeded: tuple[Path, list[str]], tmp_path: Path
) -> None:
    seed, ids = seeded
    _, statement, params = next(case for case in CASES if case[0] == what)
    reference, driven = _copy(seed, tmp_path, "reference"), _copy(seed, tmp_path, "driven")
    try:
        values = params(ids)
        expected_rows, expected_count = _through_sqlalchemy(reference, statement, values)
        rows, count = _through_driver(driven, statement, values)
        assert rows == expected_rows
        assert [[type(v) for v in row] for row in rows] == [
            [type(v) for v in row] for row in expected_rows
        ]
        if expected_count >= 0 and not expected_rows:  # what a write changed
            assert count == expected_count
        assert _dump(driven) == _dump(reference)
    finally:
        reference.dispose()
        driven.dispose()


def test_the_driver_raises_sqlalchemys_errors_and_rolls_the_write_back(
    seeded: tuple[Path, list[str]], tmp_path: Path
) -> None:
    seed, ids = seeded
    engine = _copy(seed, tmp_path, "errors")
    before = _dump(engine)
    duplicate = {"task_id": ids[1], "label": "a"}  # already stored
    try:
        with engine.connect() as connection:
            driver = DriverConnection(connection)

            def delete_then_insert_a_duplicate() -> None:
                with driver.write():
                    driver.execute(statements._DELETE_LABELS, {"task_id": ids[0]})
                    driver.execute(statements._INSERT_LABELS, [duplicate])

            with pytest.raises(exc.IntegrityError) as raised:
                delete_then_insert_a_duplicate()
            assert isinstance(raised.value.orig, sqlite3.IntegrityError)
            assert "INSERT INTO task_labels" in str(raised.value.statement)
            assert not connection.connection.driver_connection.in_transaction  # type: ignore[attr-defined]
        assert _dump(engine) == before
    finally:
        engine.dispose()


def _client_spans(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    spans = [
        {
            "name": span.name,
            "kind": span.kind.name,
            "status": [span.status.status_code.name, span.status.description],
            "attributes": dict(span.attributes or {}),
            "parent": span.parent is not None,
        }
        for span in exporter.get_finished_spans()
        if span.kind is trace.SpanKind.CLIENT
    ]
    exporter.clear()
    return spans


def test_statements_are_traced_as_sqlalchemys_are(
    seeded: tuple[Path, list[str]], tmp_path: Path
) -> None:
    from task_manager.tracing import _trace_engine

    seed, ids = seeded
    get = {"task_id": ids[1], "owner": OWNER}
    duplicate = [{"task_id": ids[1], "label": "a"}]  # fails: already stored
    engine = _copy(seed, tmp_path, "traced")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _trace_engine(engine, provider)  # the listener the service attaches
    request = provider.get_tracer("test")
    spans = {}
    try:
        with engine.connect() as connection:
            driver = DriverConnection(connection)
            for name, session in (("sqlalchemy", connection), ("driver", driver)):
                with request.start_as_current_span("request"):
                    session.execute(statements._GET, get)
                    with pytest.raises(exc.IntegrityError):
                        session.execute(statements._INSERT_LABELS, duplicate)
                spans[name] = _client_spans(exporter)
    finally:
        engine.dispose()
    assert len(spans["driver"]) == 2
    assert spans["driver"][1]["status"][0] == "ERROR"
    assert spans["driver"] == spans["sqlalchemy"]


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[TaskRepository]:
    engine = build_engine(f"sqlite:///{tmp_path}/compiled.db")
    upgrade(engine)
    yield TaskRepository(engine)
    engine.dispose()


def test_each_statement_is_compiled_once_per_thread(repository: TaskRepository) -> None:
    task = repository.create(OWNER, TaskCreate(title="t", labels=["a"])).task
    held = repository._held
    assert held is not None
    driver = held.get()
    compiled = dict(driver._compiled)
    for _ in range(3):
        repository.get(OWNER, task.id)
        repository.create(OWNER, TaskCreate(title="t", labels=["a"]))
    assert driver._compiled.keys() == compiled.keys() | {
        key for key in driver._compiled if key[0] is statements._GET
    }
    assert all(driver._compiled[key] is value for key, value in compiled.items())


def test_dispose_closes_idle_held_connections_but_not_one_a_request_is_using(
    repository: TaskRepository,
) -> None:
    held = repository._held
    assert held is not None
    for use in ("read", "write"):
        driver = held.get()
        with getattr(driver, use)():
            repository.engine.dispose()  # the shutdown's, while a request is still running
            assert not driver.connection.invalidated
        repository.engine.dispose()
        assert driver.connection.invalidated
        assert held.get() is not driver  # the thread connects again
