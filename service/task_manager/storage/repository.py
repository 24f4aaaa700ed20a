"""The task repository: the handful of operations the API needs, over SQLite or PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, NoReturn

from pydantic import TypeAdapter
from pydantic_core import from_json
from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from werkzeug.http import quote_etag

from task_manager.errors import NotFound, PreconditionFailed, ValidationFailed
from task_manager.models import (
    ListQuery,
    Priority,
    Sort,
    Status,
    Task,
    TaskCreate,
    TaskFields,
    TaskPage,
)
from task_manager.storage.driver import DriverConnection
from task_manager.storage.engine import AUTOCOMMIT_READ
from task_manager.storage.failures import translated
from task_manager.storage.schema import idempotency_keys, task_labels, tasks

Observer = Callable[[str, float], None]

# One list of a task's columns (every column but the owner, each named as the Task field it
# holds): the SELECTs, the INSERT, the UPDATE and the row mapping all derive from it, so a column
# added to the table needs no edit here (test_storage checks the names against the models).
_TASK_COLUMNS = tuple(column for column in tasks.c if column.name != "owner")
# The columns an update writes: the writable fields, and when they were written.
_WRITTEN = tuple(
    column.name
    for column in _TASK_COLUMNS
    if column.name in TaskFields.model_fields or column.name == "updated_at"
)


# Every statement is built once, values as bind parameters: SQLAlchemy memoises their cache keys
# (PostgreSQL), and on SQLite storage/driver.py compiles each once per thread.
_PING = text("SELECT 1")
_COUNT_BY_STATUS = select(tasks.c.status, func.count()).group_by(tasks.c.status)
_IS_TASK = (tasks.c.id == bindparam("task_id")) & (tasks.c.owner == bindparam("owner"))
_GET = select(*_TASK_COLUMNS).where(_IS_TASK)
_VERSION = select(tasks.c.version).where(_IS_TASK)
_DELETE = delete(tasks).where(_IS_TASK)
_DELETE_AT_VERSION = _DELETE.where(tasks.c.version == bindparam("expected_version"))
_INSERT_TASK = insert(tasks)
_INSERT_LABELS = insert(task_labels)
_DELETE_LABELS = delete(task_labels).where(task_labels.c.task_id == bindparam("task_id"))
_INSERT_IDEMPOTENCY_KEY = insert(idempotency_keys)
_REPLAY = select(idempotency_keys.c.request_hash, idempotency_keys.c.response_body).where(
    idempotency_keys.c.owner == bindparam("owner"), idempotency_keys.c.key == bindparam("key")
)
_PURGE = delete(idempotency_keys).where(idempotency_keys.c.created_at < bindparam("older_than"))
# Bind names differ from the column names: SQLAlchemy reserves those for its own SET parameters.
_UPDATE = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("task_id"),
        tasks.c.owner == bindparam("match_owner"),
        tasks.c.version == bindparam("expected_version"),
    )
    .values(
        {name: bindparam("new_" + name) for name in _WRITTEN} | {"version": tasks.c.version + 1}
    )
    .returning(*_TASK_COLUMNS)
)


# Idempotency keys are kept this long, then purged (at most every PURGE_INTERVAL, by a create).
IDEMPOTENCY_RETENTION = timedelta(hours=24)
PURGE_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True)
class Created:
    task: Task
    replayed: bool


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored_utc(value: datetime | str | None) -> datetime | str | None:
    """A timestamp column's value as read: a datetime (PostgreSQL), or on SQLite the text
    SQLAlchemy stored, ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, which pydantic-core parses while
    validating (in C, instead of a parse and a replace() here per value: bench/README.md)."""
    if isinstance(value, str):
        return value + "Z"
    return _utc(value)


def _now() -> datetime:
    return datetime.now(UTC)


_Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _enum_value(member: Status | Priority) -> str:
    return member.value


# How a Task field is stored in its column and read back, where the two differ; timestamps are
# stored and read as UTC (SQLite keeps no zone).
_CODECS: dict[str, tuple[_Convert, _Convert]] = {
    "id": (str, uuid.UUID),
    "status": (_enum_value, Status),
    "priority": (_enum_value, Priority),
    "labels": (json.dumps, from_json),  # pydantic-core's parser: about 6x json.loads on a row
}


def _codec(column: Column[Any]) -> tuple[_Convert, _Convert]:
    if column.name in _CODECS:
        return _CODECS[column.name]
    if isinstance(column.type, DateTime):
        return _utc, _stored_utc
    return _same, _same


_ENCODE = {column.name: _codec(column)[0] for column in _TASK_COLUMNS}
# Reading back, pydantic's validation parses the id and the enums itself (in pydantic-core,
# faster than uuid.UUID and Enum calls here followed by model_construct: bench/README.md); only
# the labels' JSON and the timestamps' zone (or SQLite's text) are converted before it.
_PARSED_BY_PYDANTIC = (uuid.UUID, Status, Priority)
_DECODE = tuple(
    (column.name, None if _codec(column)[1] in _PARSED_BY_PYDANTIC else _codec(column)[1])
    for column in _TASK_COLUMNS
)
_TASKS: TypeAdapter[list[Task]] = TypeAdapter(list[Task])


_NAMES = tuple(name for name, _ in _DECODE)
_CONVERTED = tuple((name, decode) for name, decode in _DECODE if decode is not None)


def _task_fields(row: Sequence[Any]) -> dict[str, Any]:
    fields = dict(zip(_NAMES, row, strict=True))
    for name, decode in _CONVERTED:
        fields[name] = decode(fields[name])
    return fields


def _row_to_task(row: Sequence[Any]) -> Task:
    return Task.model_validate(_task_fields(row))


def _rows_to_tasks(rows: Sequence[Sequence[Any]]) -> list[Task]:
    """A page of rows in one validation call."""
    return _TASKS.validate_python([_task_fields(row) for row in rows])


def _task_row(owner: str, task: Task) -> dict[str, Any]:
    """The INSERT parameters of a task: one per column."""
    values = {name: encode(getattr(task, name)) for name, encode in _ENCODE.items()}
    return {"owner": owner, **values}


def request_hash(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _unique(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(labels))


class _Cursor:
    """Keyset position: (sort, due_at is null, sort value, id), opaque to clients."""

    @staticmethod
    def encode(sort: Sort, task: Task) -> str:
        value = task.due_at if sort in (Sort.DUE_AT, Sort.DUE_AT_DESC) else task.created_at
        raw = json.dumps(
            [sort.value, value is None, value.isoformat() if value else None, str(task.id)]
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def decode(sort: Sort, cursor: str) -> tuple[bool, datetime | None, str]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            sort_name, is_null, value, task_id = json.loads(raw)
            if sort_name != sort.value:
                raise ValueError("cursor was made for another sort order")
            when = None if is_null else _utc(datetime.fromisoformat(value))
            return bool(is_null), when, str(uuid.UUID(task_id))
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, AttributeError):
            raise ValidationFailed(
                "The request has invalid fields.",
                [{"parameter": "cursor", "detail": "Not a cursor returned for this sort order."}],
            ) from None


# Where a page starts: the first page, inside the trailing block of tasks without a due date, or
# after a sort value.
_After = Literal["null", "value"] | None


@cache
def _list_statement(
    sort: Sort, *, status: bool, priority: bool, label: bool, after: _After
) -> Select[Any]:
    """The list SELECT of one query shape, values as bind parameters: built once per shape, so
    SQLAlchemy's cache key is memoised as for the other statements."""
    due = sort in (Sort.DUE_AT, Sort.DUE_AT_DESC)
    column = tasks.c.due_at if due else tasks.c.created_at
    descending = sort in (Sort.CREATED_AT_DESC, Sort.DUE_AT_DESC)
    conditions: list[ColumnElement[bool]] = [tasks.c.owner == bindparam("owner")]
    if status:
        conditions.append(tasks.c.status == bindparam("status"))
    if priority:
        conditions.append(tasks.c.priority == bindparam("priority"))
    if label:
        conditions.append(
            exists().where(
                task_labels.c.task_id == tasks.c.id, task_labels.c.label == bindparam("label")
            )
        )
    after_id = tasks.c.id > bindparam("after_id")
    if after == "null":
        conditions.append(and_(column.is_(None), after_id))
    elif after == "value":
        value: BindParameter[datetime] = bindparam("after_value")
        beyond = column < value if descending else column > value
        past = or_(beyond, and_(column == value, after_id))
        conditions.append(or_(and_(column.is_not(None), past), column.is_(None)) if due else past)
    order = [column.desc() if descending else column.asc(), tasks.c.id.asc()]
    if due:  # tasks without a due date come last in both directions
        order.insert(0, tasks.c.due_at.is_(None).asc())
    return (
        select(*_TASK_COLUMNS).where(and_(*conditions)).order_by(*order).limit(bindparam("limit"))
    )


# Where the repository's statements run: a SQLAlchemy Connection (PostgreSQL, and SQLite outside
# the request threads' held connections) or a SQLite driver connection.
_Session = Connection | DriverConnection


def _task_rows(connection: _Session, statement: Any, params: Mapping[str, Any]) -> list[Any]:
    """Rows of task columns as stored: SQLite's timestamps stay text for pydantic to parse."""
    if isinstance(connection, DriverConnection):
        return connection.execute(statement, params, as_stored=True).all()
    return list(connection.execute(statement, params).all())


class _HeldConnections:
    """SQLite: one open Connection per thread, in place of a pool checkout and return for every
    repository call (the Connection's setup, the pool's queue, reset and events: bench/README.md),
    its statements run on its driver connection (storage/driver.py).

    Between transactions a SQLite connection holds no lock (every transaction here ends with its
    `with` block), so an idle held connection costs only its memory, as an idle pooled one does.
    A thread that ends drops its connection, which SQLAlchemy returns to the pool; engine.dispose()
    (at shutdown) closes the idle held ones as well."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._held: weakref.WeakSet[DriverConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        event.listen(engine, "engine_disposed", self._close_all)

    def get(self) -> DriverConnection:
        driver: DriverConnection | None = getattr(self._local, "driver", None)
        if driver is None or driver.connection.closed or driver.connection.invalidated:
            if driver is not None:
                driver.connection.close()
            connection = self._engine.connect()
            driver = self._local.driver = DriverConnection(connection)
            with self._lock:
                self._held.add(driver)
        else:
            driver.end_transaction()  # what the pool's reset on return would have done
        return driver

    def _close_all(self, _engine: Engine) -> None:
        # After dispose() the pool is a new one; a held connection closed normally would go back
        # to the old one and stay open. Invalidating closes it; its thread then connects again.
        # One in use belongs to a request still running: its thread keeps it.
        with self._lock:
            held = list(self._held)
        for driver in held:
            if not driver.connection.closed and not driver.in_use:
                driver.connection.invalidate()


class TaskRepository:
    """Tasks belong to an owner (principal); another owner's task does not exist for them."""

    def __init__(self, engine: Engine, observe: Observer | None = None) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._next_purge = _now()
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite else nullcontext()
        )
        self._observe = observe or (lambda _op, _seconds: None)
        # One SELECT is atomic on its own: on SQLite, reads skip the BEGIN/COMMIT round trips. The
        # option is set once on an engine view sharing the pool, not per checkout.
        self._read_engine = (
            engine.execution_options(**{AUTOCOMMIT_READ: True}) if self._sqlite else engine
        )
        # PostgreSQL keeps a pool checkout per call: its pre-ping and recycle guard against a
        # server that restarted or dropped the connection meanwhile.
        self._held = _HeldConnections(engine) if self._sqlite else None

    @contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._observe(operation, time.perf_counter() - start)

    @contextmanager
    def _write(self) -> Iterator[_Session]:
        # SQLite has one writer at a time. Queueing this process's writers on a lock instead of
        # on SQLite's busy handler (which sleeps in steps of milliseconds) keeps write latency low;
        # busy_timeout still covers other processes (a `migrate` run).
        with translated(), self._write_lock:
            if self._held is not None:
                with self._held.get().write() as driver:
                    yield driver
                return
            with self.engine.begin() as connection:
                yield connection

    @contextmanager
    def _read(self) -> Iterator[_Session]:
        if self._held is not None:
            with translated(), self._held.get().read() as driver:
                yield driver
            return
        with self._pooled_read() as connection:
            yield connection

    @contextmanager
    def _pooled_read(self) -> Iterator[Connection]:
        """A read on a pool checkout: for threads that come and go (the metrics server's)."""
        with translated(), self._read_engine.connect() as connection, connection.begin():
            yield connection

    # --- health -------------------------------------------------------------------------------

    def ping(self) -> None:
        with self._read() as connection:
            connection.execute(_PING)

    def count_by_status(self) -> dict[str, int]:
        with self._timed("count_by_status"), self._pooled_read() as connection:
            rows = connection.execute(_COUNT_BY_STATUS).all()
        counts = dict.fromkeys((status.value for status in Status), 0)
        counts.update({status: int(count) for status, count in rows})
        return counts

    # --- tasks --------------------------------------------------------------------------------

    def create(
        self,
        owner: str,
        data: TaskCreate,
        *,
        idempotency_key: str | None = None,
        body_hash: str | None = None,
    ) -> Created:
        if idempotency_key is not None and _now() >= self._next_purge:
            self._next_purge = _now() + PURGE_INTERVAL
            self.purge_idempotency_keys(_now() - IDEMPOTENCY_RETENTION)
        with self._timed("create"):
            try:
                return self._create(owner, data, idempotency_key, body_hash)
            except IntegrityError:
                if idempotency_key is None:
                    raise
                # A concurrent request with the same key won the insert: answer as a replay.
                replay = self._replay(owner, idempotency_key, body_hash)
                if replay is None:
                    raise
                return replay

    def purge_idempotency_keys(self, older_than: datetime) -> int:
        """Deletes idempotency keys stored before ``older_than``; returns how many."""
        with self._timed("purge_idempotency_keys"), self._write() as connection:
            result = connection.execute(_PURGE, {"older_than": older_than})
        return int(result.rowcount)

    def _replay(self, owner: str, key: str, body_hash: str | None) -> Created | None:
        with self._read() as connection:
            return self._find_replay(connection, owner, key, body_hash)

    def _find_replay(
        self, connection: _Session, owner: str, key: str, body_hash: str | None
    ) -> Created | None:
        row = connection.execute(_REPLAY, {"owner": owner, "key": key}).first()
        if row is None:
            return None
        stored_hash, response_body = row
        if stored_hash != body_hash:
            raise ValidationFailed(
                "The Idempotency-Key was already used with a different request body.",
                [{"parameter": "Idempotency-Key", "detail": "Reused with a different body."}],
            )
        return Created(task=Task.model_validate_json(response_body), replayed=True)

    def _create(
        self, owner: str, data: TaskCreate, key: str | None, body_hash: str | None
    ) -> Created:
        now = _now()
        labels = _unique(data.labels)
        task = Task.model_construct(  # from a validated TaskCreate
            **{
                **dict(data),
                "id": uuid.uuid4(),
                "labels": labels,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
        with self._write() as connection:
            if key is not None:
                replay = self._find_replay(connection, owner, key, body_hash)
                if replay is not None:
                    return replay
            task_id = str(task.id)
            connection.execute(_INSERT_TASK, _task_row(owner, task))
            self._insert_labels(connection, task_id, labels)
            if key is not None:
                connection.execute(
                    _INSERT_IDEMPOTENCY_KEY,
                    dict(
                        owner=owner,
                        key=key,
                        request_hash=body_hash or "",
                        task_id=task_id,
                        response_body=task.model_dump_json(),
                        created_at=now,
                    ),
                )
        return Created(task=task, replayed=False)

    @staticmethod
    def _insert_labels(connection: _Session, task_id: str, labels: list[str]) -> None:
        if labels:
            connection.execute(
                _INSERT_LABELS, [{"task_id": task_id, "label": label} for label in labels]
            )

    def get(self, owner: str, task_id: uuid.UUID) -> Task:
        with self._timed("get"), self._read() as connection:
            found = _task_rows(connection, _GET, {"task_id": str(task_id), "owner": owner})
        if not found:
            raise NotFound(f"Task {task_id} does not exist.")
        return _row_to_task(found[0])

    def list(self, owner: str, query: ListQuery) -> TaskPage:
        params: dict[str, Any] = {"owner": owner, "limit": query.limit + 1}
        if query.status is not None:
            params["status"] = query.status.value
        if query.priority is not None:
            params["priority"] = query.priority.value
        if query.label is not None:
            params["label"] = query.label
        after: _After = None
        if query.cursor is not None:
            is_null, value, params["after_id"] = _Cursor.decode(query.sort, query.cursor)
            after = "null" if is_null else "value"
            if value is not None:
                params["after_value"] = value
        statement = _list_statement(
            query.sort,
            status=query.status is not None,
            priority=query.priority is not None,
            label=query.label is not None,
            after=after,
        )
        with self._timed("list"), self._read() as connection:
            rows = _task_rows(connection, statement, params)
        items = _rows_to_tasks(rows[: query.limit])
        next_cursor = (
            _Cursor.encode(query.sort, items[-1]) if len(rows) > query.limit and items else None
        )
        return TaskPage(items=items, next_cursor=next_cursor)

    def update(
        self,
        owner: str,
        task_id: uuid.UUID,
        fields: TaskFields,
        expected_version: int,
        stored_labels: Sequence[str] | None = None,
    ) -> Task:
        """Writes ``fields`` if the stored version is still ``expected_version`` (else 412).

        ``stored_labels``, when the caller read them at ``expected_version``, spares rewriting
        the label rows when the labels did not change: the UPDATE only matches that version.
        """
        labels = _unique(fields.labels)
        written = dict(fields) | {"labels": labels, "updated_at": _now()}
        params = {"new_" + name: _ENCODE[name](written[name]) for name in _WRITTEN}
        with self._timed("update"), self._write() as connection:
            updated = _task_rows(
                connection,
                _UPDATE,
                {
                    "task_id": str(task_id),
                    "match_owner": owner,
                    "expected_version": expected_version,
                    **params,
                },
            )
            if not updated:
                self._missing_or_stale(connection, owner, task_id)
            if stored_labels is None or labels != list(stored_labels):
                connection.execute(_DELETE_LABELS, {"task_id": str(task_id)})
                self._insert_labels(connection, str(task_id), labels)
        return _row_to_task(updated[0])

    def delete(self, owner: str, task_id: uuid.UUID, expected_version: int | None) -> None:
        params: dict[str, Any] = {"task_id": str(task_id), "owner": owner}
        statement = _DELETE
        if expected_version is not None:
            statement, params["expected_version"] = _DELETE_AT_VERSION, expected_version
        with self._timed("delete"), self._write() as connection:
            result = connection.execute(statement, params)
            if result.rowcount == 0:
                self._missing_or_stale(connection, owner, task_id)

    @staticmethod
    def _missing_or_stale(connection: _Session, owner: str, task_id: uuid.UUID) -> NoReturn:
        found = connection.execute(_VERSION, {"task_id": str(task_id), "owner": owner}).first()
        if found is None:
            raise NotFound(f"Task {task_id} does not exist.")
        raise PreconditionFailed(
            "The task was changed since the version in If-Match; fetch it again.",
            headers={"ETag": quote_etag(str(found[0]))},
        )
