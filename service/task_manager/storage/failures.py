"""Database failures as domain errors: an unreachable or busy database is a 503, a full disk a 507.

Both come out of the driver as "operational" errors; which one it is differs between SQLite (the
extended result code) and PostgreSQL (the SQLSTATE class), and that difference stays here.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa

from task_manager.errors import InsufficientStorage, ProblemError, ServiceUnavailable

log = logging.getLogger(__name__)

# SQLSTATE class 53: insufficient resources (53100 disk full, 53200 out of memory, ...).
_PG_DISK_FULL = "53100"
# A failed request is answered at once; the log says so at most once per window and kind, so an
# outage under load is a handful of lines, not one per request.
LOG_WINDOW_S = 10.0
RETRY_AFTER_S = "1"


def _disk_full(error: BaseException | None) -> bool:
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    # psycopg is not imported on SQLite (start-up time): an error can be one of its own only
    # once the PostgreSQL dialect has loaded it.
    if "psycopg" in sys.modules:
        import psycopg

        if isinstance(error, psycopg.Error):
            return error.sqlstate == _PG_DISK_FULL
    return False


class _Throttle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def due(self, kind: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(kind, 0.0):
                return False
            self._next[kind] = now + LOG_WINDOW_S
            return True


_throttle = _Throttle()


def classify(error: sa.SQLAlchemyError) -> ProblemError | None:
    """The domain error a database failure is answered with, or None for any other error."""
    if isinstance(error, sa.TimeoutError):  # every pooled connection busy
        return ServiceUnavailable(
            "The database is busy; try again.", headers={"Retry-After": RETRY_AFTER_S}
        )
    if not isinstance(error, sa.OperationalError | sa.InterfaceError):
        return None
    if _disk_full(error.orig):
        return InsufficientStorage("The database has no space left for this write.")
    return ServiceUnavailable(
        "The database is unavailable; try again.", headers={"Retry-After": RETRY_AFTER_S}
    )


@contextmanager
def translated() -> Iterator[None]:
    """Re-raises database failures as ServiceUnavailable or InsufficientStorage, logged once per
    LOG_WINDOW_S; a write that failed was rolled back by the transaction around it."""
    try:
        yield
    except sa.SQLAlchemyError as error:
        problem = classify(error)
        if problem is None:
            raise
        kind = type(problem).__name__
        if _throttle.due(kind):
            cause = getattr(error, "orig", None) or error
            log.error(
                "database failure, answering %d (repeats within %.0f s not logged): %s: %s",
                problem.status,
                LOG_WINDOW_S,
                type(cause).__name__,
                str(cause).strip()[:300],
            )
        raise problem from error
