"""Storage: engine construction, schema, migrations and the task repository."""

from task_manager.storage.engine import build_engine
from task_manager.storage.repository import Created, TaskRepository

__all__ = ["Created", "TaskRepository", "build_engine"]
