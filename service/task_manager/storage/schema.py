"""Table definitions (SQLAlchemy Core). Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# The newest Alembic revision; test_storage keeps it equal to the migration scripts' head.
SCHEMA_HEAD = "0001"

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=True),
    # Labels as a JSON array for reads; task_labels indexes them for filtering.
    Column("labels", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_tasks_owner_created", "owner", "created_at", "id"),
    Index("ix_tasks_owner_due", "owner", "due_at", "id"),
    Index("ix_tasks_status", "status"),
)

task_labels = Table(
    "task_labels",
    metadata,
    Column(
        "task_id",
        String(36),
        ForeignKey("tasks.id", ondelete="CASCADE", name="fk_task_labels_task"),
        primary_key=True,
    ),
    Column("label", String(50), primary_key=True),
    Index("ix_task_labels_label", "label", "task_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("task_id", String(36), nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
