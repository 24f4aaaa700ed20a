"""Alembic, driven programmatically: the migration scripts ship inside the package.

Alembic is imported only when the schema is behind SCHEMA_HEAD, so that a restart against an
up-to-date database starts fast; `serve` never imports it: it runs `task-manager migrate` as a
process of its own (upgrade_in_subprocess).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
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
        super().__init__(
            f"the schema migration failed (`task-manager migrate` exited with {exit_code}); "
            "see its log"
        )


def upgrade_in_subprocess(engine: Engine, environ: Mapping[str, str]) -> str:
    """When the schema is behind, brings it to head by running `task-manager migrate` as a process
    of its own, configured by ``environ`` over the inherited environment. A serving process so
    never holds Alembic and the migration scripts (about 10 MB of RSS for the life of the
    process), and never forks itself with threads running (the periodic log flush)."""
    if current_revision(engine) == SCHEMA_HEAD:
        return SCHEMA_HEAD
    for handler in logging.getLogger().handlers:
        handler.flush()  # this process's lines so far come before the child's
    child = subprocess.run(
        [sys.executable, "-m", "task_manager.cli", "migrate"],
        env={**os.environ, **environ},
        check=False,
    )
    if child.returncode != 0:
        raise MigrationError(child.returncode)
    return SCHEMA_HEAD
