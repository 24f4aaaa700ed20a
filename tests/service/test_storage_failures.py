"""storage.failures: which database failures become 503 and which 507, from real driver errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc as sa
from task_manager.errors import InsufficientStorage, ServiceUnavailable
from task_manager.storage.failures import classify, translated


def test_sqlite_full_is_insufficient_storage(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "full.db")
    connection.execute("CREATE TABLE t (x)")
    connection.execute("PRAGMA max_page_count = 2")  # a database that cannot grow: SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError) as raised:
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 4000,)] * 10)
    connection.close()
    error = sa.OperationalError("INSERT", {}, raised.value)
    assert isinstance(classify(error), InsufficientStorage)


def test_other_operational_errors_are_service_unavailable() -> None:
    cannot_open = sa.OperationalError("SELECT", {}, sqlite3.OperationalError("unable to open"))
    assert isinstance(classify(cannot_open), ServiceUnavailable)
    refused = sa.OperationalError("connect", {}, psycopg.OperationalError("connection refused"))
    problem = classify(refused)
    assert isinstance(problem, ServiceUnavailable)
    assert problem.headers["Retry-After"] == "1"
    assert isinstance(classify(sa.TimeoutError("pool exhausted")), ServiceUnavailable)


def test_integrity_errors_are_not_translated() -> None:
    error = sa.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert classify(error) is None
    with pytest.raises(sa.IntegrityError), translated():
        raise error


def test_translated_raises_the_domain_error_from_the_database_error() -> None:
    error = sa.OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed"))
    with pytest.raises(ServiceUnavailable) as raised, translated():
        raise error
    assert raised.value.__cause__ is error


def test_postgresql_disk_full_is_insufficient_storage() -> None:
    error = sa.OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file"))
    assert isinstance(classify(error), InsufficientStorage)
