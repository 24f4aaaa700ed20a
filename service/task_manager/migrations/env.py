"""Alembic environment: runs online against the engine or connection handed in by storage."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from task_manager.storage.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    attributes = context.config.attributes
    connection: Connection | None = attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine: Engine = attributes["engine"]
    with engine.connect() as conn:
        conn = conn.execution_options(task_manager_write=True)
        _run(conn)
        conn.commit()


run_migrations_online()
