"""Alembic, driven programmatically: the migration scripts ship inside the package.

Alembic is imported only when the schema is behind SCHEMA_HEAD, so that a restart against an
up-to-date database starts fast; `serve` imports it only in a forked child (upgrade_in_child).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from task_manager.storage.schema import SCHEMA_HEAD

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_PG_LOCK_ID = 7_351_021_455  # advisory lock serialising concurrent `migrate` runs


def _config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The head of the migration scripts (a test keeps SCHEMA_HEAD equal to it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, or None before the first migration."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            connection.rollback()
            if _has_version_table(engine):
                raise
            return None


def _has_version_table(engine: Engine) -> bool:
    from sqlalchemy import inspect

    return "alembic_version" in inspect(engine).get_table_names()


def upgrade(engine: Engine) -> str:
    """Upgrades the schema to head and returns the head revision."""
    if current_revision(engine) == SCHEMA_HEAD:
        return SCHEMA_HEAD
    from alembic import command

    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            try:
                connection.commit()
                config = _config(engine)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                connection.commit()
    else:
        command.upgrade(_config(engine), "head")
    return SCHEMA_HEAD


class MigrationError(RuntimeError):
    def __init__(self, exit_code: int) -> None:
        super().__init__(f"the schema migration failed (child exit code {exit_code}); see its log")


def _fork_between_log_writes() -> int:
    """os.fork() holding every root log handler's lock, after a flush: no thread (the periodic
    log flush) is inside a write at the fork, and the child has no buffered lines to write again.
    The logging module resets the child's copies of the locks."""
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.acquire()
        handler.flush()
    parent = os.getpid()
    try:
        return os.fork()
    finally:
        if os.getpid() == parent:
            for handler in handlers:
                handler.release()


def upgrade_in_child(engine: Engine) -> str:
    """upgrade() run in a forked child when the schema is behind, so that a serving process never
    holds Alembic and the migration scripts (about 10 MB of RSS for the life of the process).

    A fork, not `task-manager migrate` as a new process: that one imports the service's libraries
    all over again, which put the first start on an empty database over its cold-start target
    (bench/results.md); the fork's child needs only Alembic."""
    if current_revision(engine) == SCHEMA_HEAD:
        return SCHEMA_HEAD
    engine.dispose()  # no pooled connection is shared with the child
    pid = _fork_between_log_writes()
    if pid == 0:  # pragma: no cover - the child ends in os._exit, which coverage cannot follow
        code = 1
        try:
            upgrade(engine)
            code = 0
        except BaseException:
            log.exception("schema migration failed")
        finally:
            logging.shutdown()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise MigrationError(code)
    return SCHEMA_HEAD
