"""Engine construction; the SQLite and PostgreSQL differences live here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 5000
# Page cache per SQLite connection in KiB (SQLite's default is 2000): with one connection per
# waitress thread the default would dominate the service's memory; the OS page cache still holds
# the file. 64 KiB instead of 512 saved RSS at the same throughput (bench/README.md).
SQLITE_CACHE_KIB = 64
# Execution option for a single-statement read on SQLite: no BEGIN is sent (the statement runs in
# its own implicit transaction).
AUTOCOMMIT_READ = "task_manager_autocommit_read"


def normalise_url(raw: str) -> URL:
    url = make_url(raw)
    if url.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        url = url.set(drivername="postgresql+psycopg")
    return url


def build_engine(raw_url: str, *, pool_size: int = 8) -> Engine:
    url = normalise_url(raw_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size)
    if url.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"connect_timeout": 5, "application_name": "task-manager"},
        )
    raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql")


def _sqlite_engine(url: URL, pool_size: int) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        # One connection per waitress thread, plus a few for the metrics scrape and probes.
        pool_size=pool_size,
        max_overflow=4,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Durable across a process crash, not across power loss: docs/service.md, Storage.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(AUTOCOMMIT_READ, False):
            return
        # Straight to the driver: no cursor events, so the BEGIN of every transaction is neither
        # a span of its own nor a trip through the statement hooks. The repository's writes do
        # not come here: they begin with BEGIN IMMEDIATE on the driver (storage/driver.py).
        connection.connection.driver_connection.execute("BEGIN")

    return engine
