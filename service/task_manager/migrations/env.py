"""Alembic environment: runs online against the engine or connection handed in by storage, or, from
the alembic command line (writing a migration, docs/service.md), against the database named by
`-x url=...`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from task_manager.storage.engine import build_engine
from task_manager.storage.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _command_line_engine() -> Engine:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("alembic: name the database with -x url=sqlite:///... (docs/service.md)")
    return build_engine(url, pool_size=1)


def run_migrations_online() -> None:
    attributes = context.config.attributes
    connection: Connection | None = attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    given: Engine | None = attributes.get("engine")
    engine = given or _command_line_engine()
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(task_manager_write=True)
            _run(conn)
            conn.commit()
    finally:
        if given is None:
            engine.dispose()


run_migrations_online()
