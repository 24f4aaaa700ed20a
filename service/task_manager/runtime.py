"""Per-app runtime state shared by the app factory, the probes and the server."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import Flask

from task_manager.metrics import Metrics
from task_manager.settings import Settings
from task_manager.storage import TaskRepository
from task_manager.storage.migrate import current_revision
from task_manager.storage.schema import SCHEMA_HEAD
from task_manager.tracing import Tracing

log = logging.getLogger(__name__)
_KEY = "task_manager"


@dataclass
class Runtime:
    settings: Settings
    repository: TaskRepository
    metrics: Metrics
    tracing: Tracing
    head: str = SCHEMA_HEAD
    draining: threading.Event = field(default_factory=threading.Event)
    _schema_ok: bool = False

    def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {"draining": "draining" if self.draining.is_set() else "ok"}
        try:
            if not self._schema_ok:
                current = current_revision(self.repository.engine)
                self._schema_ok = current == self.head
                checks["schema"] = "ok" if self._schema_ok else f"at {current}, head is {self.head}"
            else:
                checks["schema"] = "ok"
            self.repository.ping()
            checks["database"] = "ok"
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", type(exc).__name__)
            checks["database"] = "unreachable"
        return checks


def attach(app: Flask, state: Runtime) -> None:
    app.extensions[_KEY] = state


def runtime(app: Flask) -> Runtime:
    state: Runtime = app.extensions[_KEY]
    return state
