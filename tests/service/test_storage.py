"""The repository against SQLite and a real PostgreSQL: every test runs on both."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, event, inspect, select, text
from support.postgres import Postgres
from task_manager.errors import NotFound, PreconditionFailed, ValidationFailed
from task_manager.models import ListQuery, Priority, Sort, Status, Task, TaskCreate, TaskFields
from task_manager.storage import TaskRepository, build_engine
from task_manager.storage.migrate import current_revision, head_revision, upgrade
from task_manager.storage.repository import request_hash
from task_manager.storage.schema import metadata, task_labels, tasks


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def repository(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TaskRepository]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('storage')}/tasks.db"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.create_database()
    engine = build_engine(url, pool_size=8)
    upgrade(engine)
    yield TaskRepository(engine)
    engine.dispose()


def owner() -> str:
    return "p-" + uuid.uuid4().hex[:10]


def fields_of(task: object, **changes: object) -> TaskFields:
    data = task.model_dump(include=set(TaskFields.model_fields))  # type: ignore[attr-defined]
    data.update(changes)
    return TaskFields.model_validate(data)


def test_migrations_bring_the_schema_to_head(repository: TaskRepository) -> None:
    assert current_revision(repository.engine) == head_revision()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a new, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/empty.db"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.create_database()
    engine = build_engine(url, pool_size=2)
    yield engine
    engine.dispose()


@contextmanager
def statement_log(engine: Engine) -> Iterator[list[str]]:
    """Every statement SQLAlchemy sends through ``engine`` while the block runs."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def matching(keywords: str, statements: list[str]) -> list[str]:
    """The statements that begin with one of ``keywords`` (a regex alternation)."""
    return [s for s in statements if re.match(rf"\s*({keywords})\b", s, re.IGNORECASE)]


DDL, WRITES = "CREATE|ALTER|DROP", "INSERT|UPDATE|DELETE"


def schema_snapshot(engine: Engine) -> dict[str, object]:
    """Tables with their columns, indexes and keys, and the recorded revision."""
    inspector = inspect(engine)
    snapshot: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        snapshot[table] = (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            inspector.get_pk_constraint(table)["constrained_columns"],
            [(f["name"], f["referred_table"]) for f in inspector.get_foreign_keys(table)],
        )
    with engine.connect() as connection:
        snapshot["revision"] = connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).all()
    return snapshot


def test_upgrade_twice_is_a_no_op(empty_engine: Engine) -> None:
    with statement_log(empty_engine) as first:
        upgrade(empty_engine)
    # The log sees the migration's DDL, so an empty log below means none ran.
    assert any("CREATE TABLE TASKS" in s.upper() for s in matching(DDL, first))
    assert matching(WRITES, first) != []  # the revision recorded in alembic_version
    before = schema_snapshot(empty_engine)
    with statement_log(empty_engine) as second:
        assert upgrade(empty_engine) == head_revision()
    assert matching(DDL, second) == []
    assert matching(WRITES, second) == []
    assert schema_snapshot(empty_engine) == before


def schema_drift(engine: Engine, target: MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to turn the live schema into ``target``."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, target))


def test_migrations_create_exactly_the_schema_of_the_table_definitions(
    empty_engine: Engine,
) -> None:
    upgrade(empty_engine)
    assert schema_drift(empty_engine, metadata) == []


def test_schema_comparison_reports_a_column_that_only_one_side_has(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with_extra_column = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(with_extra_column)
    with_extra_column.tables["tasks"].append_column(Column("only_in_code", Integer))
    assert [(d[0], d[2], d[3].name) for d in schema_drift(empty_engine, with_extra_column)] == [
        ("add_column", "tasks", "only_in_code")
    ]
    with empty_engine.begin() as connection:
        connection.execute(text("ALTER TABLE tasks ADD COLUMN only_in_database INTEGER"))
    assert [(d[0], d[2], d[3].name) for d in schema_drift(empty_engine, metadata)] == [
        ("remove_column", "tasks", "only_in_database")
    ]


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/pragmas.db")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_writes_begin_immediate_so_concurrent_writers_queue(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/immediate.db")
    statements: list[str] = []
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _record(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(statements.append)  # what SQLite itself runs

    upgrade(engine)
    repository = TaskRepository(engine)
    statements.clear()
    repository.create("me", TaskCreate(title="t"))
    engine.dispose()
    assert statements[0] == "BEGIN IMMEDIATE"
    assert any(s.startswith("INSERT INTO tasks") for s in statements)


def test_create_then_get_round_trips_every_field(repository: TaskRepository) -> None:
    me = owner()
    due = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    created = repository.create(
        me,
        TaskCreate(title="t", description="d", priority="high", due_at=due, labels=["a", "b"]),
    ).task
    fetched = repository.get(me, created.id)
    assert fetched == created
    assert fetched.due_at == due
    assert fetched.created_at.tzinfo is not None


def test_a_listed_page_reads_back_varied_tasks_as_created(repository: TaskRepository) -> None:
    # A page is read back in one validation call (not model_construct per row): each task must
    # come back equal to the created one, serialise to the same bytes, and as get() reads it.
    me = owner()
    variants = [
        TaskCreate(title="plain"),
        TaskCreate(
            title='ünïcødé ✓ "quoted" \\ tab\t',
            description="line\nbreak é",
            status="in_progress",
            priority="low",
            due_at=datetime(2030, 1, 2, 3, 4, 5, 600, tzinfo=timezone(timedelta(hours=2))),
            labels=["b", "a", "b", "x.y:z/1-2"],
        ),
        TaskCreate(title="t" * 200, description="", status="done", priority="high", labels=[]),
        TaskCreate(title="due", due_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ]
    created = [repository.create(me, variant).task for variant in variants]
    page = repository.list(me, ListQuery(limit=10))
    by_id = {task.id: task for task in page.items}  # created_at may tie: compare by id
    assert len(by_id) == len(created)
    for task in created:
        listed = by_id[task.id]
        assert listed == task
        assert listed.model_dump_json() == task.model_dump_json()
        assert repository.get(me, task.id).model_dump_json() == task.model_dump_json()
        assert isinstance(listed.id, uuid.UUID)
        assert isinstance(listed.status, Status)
        assert listed.created_at.tzinfo is not None


def test_every_task_field_has_a_column_and_every_column_a_field() -> None:
    # The repository maps rows to tasks by column name: a column without a field (or the other
    # way round) would be silently dropped.
    columns = {column.name for column in tasks.c} - {"owner"}
    assert columns == set(Task.model_fields)
    assert set(TaskFields.model_fields) <= columns


def test_update_writes_every_writable_field(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t", labels=["a"])).task
    changes = {
        "title": "u",
        "description": "now described",
        "status": Status.DONE,
        "priority": Priority.HIGH,
        "due_at": datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC),
        "labels": ["b", "c"],
    }
    assert set(changes) == set(TaskFields.model_fields)
    updated = repository.update(me, task.id, fields_of(task, **changes), 1)
    fetched = repository.get(me, task.id)
    assert fetched == updated
    assert {name: getattr(fetched, name) for name in changes} == changes
    assert (fetched.id, fetched.created_at, fetched.version) == (task.id, task.created_at, 2)


def test_get_of_another_owners_task_raises_not_found(repository: TaskRepository) -> None:
    task = repository.create(owner(), TaskCreate(title="mine")).task
    with pytest.raises(NotFound):
        repository.get(owner(), task.id)


def test_update_with_the_current_version_writes_and_increments(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t", labels=["a"])).task
    updated = repository.update(me, task.id, fields_of(task, title="u", labels=["b"]), 1)
    assert updated.version == 2
    assert updated.title == "u"
    assert updated.labels == ["b"]
    assert updated.updated_at >= task.updated_at


def test_label_rows_follow_updates_that_name_the_stored_labels(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t", labels=["a"])).task
    kept = repository.update(me, task.id, fields_of(task, title="u"), 1, stored_labels=["a"])
    assert [t.id for t in repository.list(me, ListQuery(label="a")).items] == [task.id]
    repository.update(me, task.id, fields_of(kept, labels=["b"]), 2, stored_labels=["a"])
    assert repository.list(me, ListQuery(label="a")).items == []
    assert [t.id for t in repository.list(me, ListQuery(label="b")).items] == [task.id]


def test_update_with_a_stale_version_raises_precondition_failed(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t")).task
    repository.update(me, task.id, fields_of(task, title="second"), 1)
    with pytest.raises(PreconditionFailed):
        repository.update(me, task.id, fields_of(task, title="stale"), 1)
    assert repository.get(me, task.id).title == "second"


def test_concurrent_updates_of_one_version_let_exactly_one_win(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t")).task
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            repository.update(me, task.id, fields_of(task, title=f"w{i}"), 1)
            outcomes.append("won")
        except PreconditionFailed:
            outcomes.append("412")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["412"] * 5 + ["won"]
    assert repository.get(me, task.id).version == 2


def test_delete_removes_the_task_and_its_labels(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t", labels=["x", "y"])).task
    repository.delete(me, task.id, None)
    with pytest.raises(NotFound):
        repository.get(me, task.id)
    with repository.engine.connect() as connection:
        rows = connection.execute(
            select(task_labels).where(task_labels.c.task_id == str(task.id))
        ).all()
    assert rows == []


def test_delete_with_a_stale_version_keeps_the_task(repository: TaskRepository) -> None:
    me = owner()
    task = repository.create(me, TaskCreate(title="t")).task
    repository.update(me, task.id, fields_of(task, title="u"), 1)
    with pytest.raises(PreconditionFailed):
        repository.delete(me, task.id, 1)
    assert repository.get(me, task.id).version == 2


def test_idempotent_create_replays_and_rejects_a_different_body(
    repository: TaskRepository,
) -> None:
    me = owner()
    body = {"title": "once"}
    first = repository.create(
        me, TaskCreate(**body), idempotency_key="k1", body_hash=request_hash(body)
    )
    again = repository.create(
        me, TaskCreate(**body), idempotency_key="k1", body_hash=request_hash(body)
    )
    assert not first.replayed
    assert again.replayed
    assert again.task == first.task
    with pytest.raises(ValidationFailed):
        repository.create(
            me, TaskCreate(title="other"), idempotency_key="k1", body_hash=request_hash({"t": 1})
        )
    # Keys are per principal.
    mine_elsewhere = repository.create(
        owner(), TaskCreate(**body), idempotency_key="k1", body_hash=request_hash(body)
    )
    assert not mine_elsewhere.replayed


def test_concurrent_creates_with_one_key_store_one_task(repository: TaskRepository) -> None:
    me = owner()
    body = {"title": "race"}
    barrier = threading.Barrier(5)
    ids: list[uuid.UUID] = []

    def create() -> None:
        barrier.wait()
        ids.append(
            repository.create(
                me, TaskCreate(**body), idempotency_key="race", body_hash=request_hash(body)
            ).task.id
        )

    threads = [threading.Thread(target=create) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(ids) == 5
    assert len(set(ids)) == 1
    assert len(repository.list(me, ListQuery()).items) == 1


def test_keyset_pages_cover_every_task_once_in_order(repository: TaskRepository) -> None:
    me = owner()
    base = datetime(2030, 1, 1, tzinfo=UTC)
    for i in range(11):
        due = None if i % 4 == 0 else base + timedelta(days=(i * 7) % 5)
        repository.create(me, TaskCreate(title=f"t{i}", due_at=due))
    for sort in Sort:
        seen = []
        cursor = None
        while True:
            page = repository.list(me, ListQuery(limit=3, sort=sort, cursor=cursor))
            seen += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == 11
        assert len({task.id for task in seen}) == 11
        if sort in (Sort.DUE_AT, Sort.DUE_AT_DESC):
            dated = [t.due_at for t in seen if t.due_at is not None]
            assert dated == sorted(dated, reverse=sort is Sort.DUE_AT_DESC)
            assert all(t.due_at is None for t in seen[len(dated) :])
        else:
            created = [t.created_at for t in seen]
            assert created == sorted(created, reverse=sort is Sort.CREATED_AT_DESC)


def test_list_filters_combine(repository: TaskRepository) -> None:
    me = owner()
    repository.create(me, TaskCreate(title="a", status="done", priority="high", labels=["x"]))
    repository.create(me, TaskCreate(title="b", status="done", priority="low", labels=["x", "y"]))
    repository.create(me, TaskCreate(title="c", status="todo", priority="high", labels=["y"]))

    def titles(**query: object) -> list[str]:
        return sorted(t.title for t in repository.list(me, ListQuery(**query)).items)

    assert titles(label="x") == ["a", "b"]
    assert titles(label="y", status="done") == ["b"]
    assert titles(priority="high") == ["a", "c"]


def test_count_by_status_counts_every_owner(repository: TaskRepository) -> None:
    before = repository.count_by_status()
    repository.create(owner(), TaskCreate(title="a", status="done"))
    repository.create(owner(), TaskCreate(title="b", status="in_progress"))
    after = repository.count_by_status()
    assert set(after) == {status.value for status in Status}
    assert after["done"] == before["done"] + 1
    assert after["in_progress"] == before["in_progress"] + 1
    assert after["todo"] == before["todo"]


def test_relative_sqlite_path_creates_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = build_engine("sqlite:///var/nested/tasks.db")
    upgrade(engine)
    engine.dispose()
    assert (tmp_path / "var" / "nested" / "tasks.db").exists()


def test_schema_head_constant_matches_the_migration_scripts() -> None:
    from task_manager.storage.schema import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD


def test_idempotency_keys_older_than_the_retention_are_purged(repository: TaskRepository) -> None:
    from task_manager.storage.schema import idempotency_keys

    me = owner()
    body = {"title": "old"}
    first = repository.create(
        me, TaskCreate(**body), idempotency_key="old", body_hash=request_hash(body)
    )
    with repository.engine.begin() as connection:
        connection.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.owner == me)
            .values(created_at=datetime.now(UTC) - timedelta(days=2))
        )
    assert repository.purge_idempotency_keys(datetime.now(UTC) - timedelta(hours=24)) >= 1
    again = repository.create(
        me, TaskCreate(**body), idempotency_key="old", body_hash=request_hash(body)
    )
    assert not again.replayed
    assert again.task.id != first.task.id


def test_sqlite_threads_keep_one_connection_and_give_it_back_when_they_end(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/held.db", pool_size=2)
    opened, closed = [], []
    event.listen(engine, "connect", lambda connection, _record: opened.append(connection))
    event.listen(engine, "close", lambda connection, _record: closed.append(connection))
    upgrade(engine)
    repository = TaskRepository(engine)
    task = repository.create("me", TaskCreate(title="t")).task
    for _ in range(3):
        repository.get("me", task.id)
    assert engine.pool.checkedout() == 1  # this thread's, held across calls
    errors: list[BaseException] = []

    def one_request() -> None:
        try:
            repository.get("me", task.id)
        except BaseException as error:
            errors.append(error)

    # More short-lived threads than the pool has room for: each returns its connection as it ends.
    for _ in range(8):
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join(10)
    assert errors == []
    assert engine.pool.checkedout() == 1
    engine.dispose()  # at shutdown: the held connections are closed too (SQLite checkpoints)
    assert opened
    assert sorted(map(id, closed)) == sorted(map(id, opened))
    assert repository.get("me", task.id) == task  # and a later call connects again
    engine.dispose()


def test_a_held_sqlite_connection_reads_what_another_process_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/replicas.db"
    first, second = build_engine(url), build_engine(url)
    upgrade(first)
    try:
        reader, writer = TaskRepository(first), TaskRepository(second)
        task = writer.create("me", TaskCreate(title="before")).task
        assert reader.get("me", task.id).title == "before"  # the reader now holds its connection
        writer.update("me", task.id, fields_of(task, title="after"), task.version)
        assert reader.get("me", task.id).title == "after"
        assert reader.list("me", ListQuery()).items[0].title == "after"
    finally:
        first.dispose()
        second.dispose()
