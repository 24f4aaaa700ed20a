"""SQLite: the repository's statements run on the sqlite3 connection, each compiled once.

`Connection.execute` builds an execution context, a cursor result and row objects for every
statement, and a `begin()` a transaction object with its events: on SQLite that was about half of
a GET's CPU (bench/README.md). Here a statement is compiled once per set of parameter names by
SQLAlchemy's compiler for the engine's dialect, with the dialect's own bind and result processors
(the timestamps' text form), and runs on the driver connection held by the thread's SQLAlchemy
Connection. What stays the same as `Connection.execute`:

- the engine's cursor events fire around every statement (before_cursor_execute,
  after_cursor_execute, handle_error), so the SQL spans still come from
  opentelemetry-instrumentation-sqlalchemy's listener, and statement logs in tests see the SQL;
- a driver error is raised as SQLAlchemy's exception for it (`DBAPIError.instance`), so
  `storage.failures` and the IntegrityError handling see what they saw before;
- a write begins with BEGIN IMMEDIATE and ends with COMMIT, or ROLLBACK on any exception; a read
  is one statement without BEGIN (WAL gives it a snapshot of its own).

Only statements SQLAlchemy's execution context has nothing to add to run here: no Python-side
column defaults, no expanding or post-compile parameters (checked when compiled).
tests/service/test_storage_driver.py runs every statement of the repository both ways and compares
rows, errors and spans.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

_Process = Callable[[Any], Any] | None
Row = tuple[Any, ...]
_MOST_COMPILED = 128


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, _Process], ...]  # in placeholder order
    defaults: Mapping[str, Any]  # values of the binds the statement carries itself
    columns: tuple[_Process, ...]  # result processors, one per returned column

    def parameters(self, values: Mapping[str, Any]) -> Row:
        merged = {**self.defaults, **values} if self.defaults else values
        return tuple(
            merged[name] if process is None else process(merged[name])
            for name, process in self.binds
        )

    def rows(self, raw: list[Row]) -> list[Row]:
        if not any(self.columns):
            return raw
        return [
            tuple(
                value if process is None or value is None else process(value)
                for process, value in zip(self.columns, row, strict=True)
            )
            for row in raw
        ]


def compile_for(statement: ClauseElement, dialect: Dialect, names: Sequence[str]) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string or compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError(f"statement needs SQLAlchemy's execution context: {compiled.string}")
    positions = compiled.positiontup or []
    binds = compiled.binds
    return _Compiled(
        sql=compiled.string,
        binds=tuple(
            (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in positions
        ),
        defaults={n: binds[n].value for n in positions if not binds[n].required},
        columns=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(statement, "exported_columns", ())
        ),
    )


class Result:
    """What the repository reads of a statement's outcome."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Row]:
        return self._rows


class DriverConnection:
    """Runs statements on the sqlite3 connection under ``connection`` (a held SQLAlchemy one)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._dialect = connection.dialect
        self._driver: sqlite3.Connection = connection.connection.driver_connection  # type: ignore[assignment]
        self._dispatch = connection.dispatch
        self._compiled: dict[tuple[ClauseElement, tuple[str, ...]], _Compiled] = {}
        self._in_use = False

    @property
    def connection(self) -> Connection:
        return self._connection

    @property
    def in_use(self) -> bool:
        """Inside read() or write(): a request's statements are running on it."""
        return self._in_use

    @contextmanager
    def read(self) -> Iterator[DriverConnection]:
        """One statement, without BEGIN: WAL gives it a snapshot of its own."""
        self._in_use = True
        try:
            yield self
        finally:
            self._in_use = False

    @contextmanager
    def write(self) -> Iterator[DriverConnection]:
        self._in_use = True
        try:
            self._run_plain("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._rollback()
                raise
            self._run_plain("COMMIT")
        finally:
            self._in_use = False

    def end_transaction(self) -> None:
        """Rolls back a transaction left open (none is, unless a rollback itself failed)."""
        if self._driver.in_transaction:
            self._rollback()

    def _rollback(self) -> None:
        try:
            self._driver.rollback()
        except sqlite3.Error:  # the connection is unusable: let the pool replace it
            self._connection.invalidate()

    def _run_plain(self, sql: str) -> None:
        # Straight to the driver, as SQLAlchemy's begin event did it before: no cursor events.
        try:
            self._driver.execute(sql)
        except sqlite3.Error as error:
            if sql == "COMMIT":
                self._rollback()
            raise self._wrapped(sql, (), error) from error

    def execute(
        self,
        statement: ClauseElement,
        parameters: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
        *,
        as_stored: bool = False,
    ) -> Result:
        """One statement; a list of parameter sets runs it once for each (executemany).

        ``as_stored`` returns the values as SQLite holds them, without the dialect's result
        processors (timestamps stay text), for a caller that parses them itself."""
        many = isinstance(parameters, list)
        batch: list[Mapping[str, Any]] = parameters if isinstance(parameters, list) else []
        first: Mapping[str, Any] = batch[0] if many else (parameters or {})  # type: ignore[assignment]
        compiled = self._compile(statement, tuple(first))
        sql = compiled.sql
        values: Any = (
            [compiled.parameters(p) for p in batch] if many else compiled.parameters(first)
        )
        cursor = self._driver.cursor()
        context = SimpleNamespace()
        events = bool(self._dispatch.before_cursor_execute)
        if events:
            for listener in self._dispatch.before_cursor_execute:
                sql, values = listener(self._connection, cursor, sql, values, context, many)
        try:
            if many:
                cursor.executemany(sql, values)
                rows: list[Row] = []
            else:
                cursor.execute(sql, values)
                rows = cursor.fetchall()
        except sqlite3.Error as error:
            wrapped = self._wrapped(sql, values, error)
            for listener in self._dialect.dispatch.handle_error:
                listener(_error_context(self, cursor, sql, values, context, error, wrapped))
            raise wrapped from error
        finally:
            rowcount = cursor.rowcount
            cursor.close()
        if events:
            for listener in self._dispatch.after_cursor_execute:
                listener(self._connection, cursor, sql, values, context, many)
        return Result(rows if as_stored else compiled.rows(rows), rowcount)

    def _compile(self, statement: ClauseElement, names: tuple[str, ...]) -> _Compiled:
        key = (statement, names)
        compiled = self._compiled.get(key)
        if compiled is None:
            # The repository's statements are module constants, so this stays small; a statement
            # built per call would fill it, and is then compiled again instead of leaking.
            if len(self._compiled) >= _MOST_COMPILED:
                self._compiled.clear()
            compiled = self._compiled[key] = compile_for(statement, self._dialect, names)
        return compiled

    def _wrapped(self, sql: str, values: Any, error: sqlite3.Error) -> StatementError:
        return DBAPIError.instance(sql, values, error, sqlite3.Error, dialect=self._dialect)


def _error_context(
    driver: DriverConnection,
    cursor: sqlite3.Cursor,
    sql: str,
    values: Any,
    context: SimpleNamespace,
    error: sqlite3.Error,
    wrapped: StatementError,
) -> SimpleNamespace:
    """The attributes of SQLAlchemy's ExceptionContext a handle_error listener reads."""
    connection = driver.connection
    return SimpleNamespace(
        connection=connection,
        engine=connection.engine,
        dialect=connection.dialect,
        cursor=cursor,
        statement=sql,
        parameters=values,
        original_exception=error,
        sqlalchemy_exception=wrapped,
        chained_exception=None,
        execution_context=context,
        is_disconnect=False,
        invalidate_pool_on_disconnect=True,
        is_pre_ping=False,
    )
