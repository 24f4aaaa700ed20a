"""JSON logs on stdout: one object per line, with request id and trace context, never secrets."""

from __future__ import annotations

import logging
import random
import re
import sys
import threading
import time
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from task_manager.metrics import PROBE_PATHS, UNMATCHED_ROUTE

ACCESS_LOGGER = "task_manager.access"
REQUEST_ID_HEADER = "X-Request-Id"

# Anything that looks like a credential is masked, whatever logged it.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',;]+"),
    re.compile(r"(?i)(token[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"),
    re.compile(r"(://[^:/@\s]+:)[^@\s]+(?=@)"),
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# How long a line may wait in the buffer before it reaches stdout, and how much is buffered.
LOG_FLUSH_INTERVAL_S = 0.1
_LOG_BUFFER_BYTES = 65536


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1<redacted>", text)
    return text


class _ContextFilter(logging.Filter):
    """Adds request_id, trace_id and span_id, and masks credentials in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        if record.name != ACCESS_LOGGER:  # access lines carry only the fields _access sets
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _Formatter(JsonFormatter):
    """python-json-logger's JsonFormatter with UTC RFC 3339 times in milliseconds; the field list
    and names come from its fmt and rename_fields options (configure_logging)."""

    # The formatted second of the last line: consecutive lines mostly share it.
    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second = int(record.created)
        cached = self._second  # one read: another thread may replace it meanwhile
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return f"{cached[1]}.{int(record.msecs):03d}Z"


class _BufferedStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stdout without a write(2) per line.

    Each write releases the GIL, and under load every waitress thread then queues to take it
    back: an access line written per request cost most of the throughput (bench/README.md).
    Lines are buffered and written by a background thread every
    LOG_FLUSH_INTERVAL_S, at once for WARNING and above, and at exit (logging.shutdown).
    """

    def __init__(self) -> None:
        stream = open(  # noqa: SIM115 - lives as long as the process
            sys.stdout.fileno(), "w", buffering=_LOG_BUFFER_BYTES, encoding="utf-8",
            closefd=False,
        )  # fmt: skip
        super().__init__(stream)
        threading.Thread(target=self._flush_periodically, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(LOG_FLUSH_INTERVAL_S)
            self.flush()


def configure_logging(level: str) -> None:
    """Installs the JSON handler on the root logger; waitress' queue warnings are quieted."""
    handler = _BufferedStdoutHandler()
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        _Formatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    # The lines carry no thread, process or multiprocessing name: skip looking them up for
    # every record (the logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # "Task queue depth is N" is logged per request under load: keep only real errors.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def instrument(app: Flask) -> None:
    """Request ids and one access line per request (probes excluded)."""
    access = logging.getLogger(ACCESS_LOGGER)

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # A correlation id, not a secret: uuid4's os.urandom is a syscall that gives up the GIL.
        g.request_id = (
            incoming if _REQUEST_ID.match(incoming) else f"{random.getrandbits(128):032x}"  # nosec B311
        )
        g.access_start = time.perf_counter()

    @app.after_request
    def _access(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if request.path in PROBE_PATHS:
            return response
        start: float = g.get("access_start", time.perf_counter())
        rule = request.url_rule
        extra: dict[str, Any] = {
            "method": request.method,
            "route": rule.rule if rule is not None else UNMATCHED_ROUTE,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            "principal": g.get("principal"),
        }
        if access.isEnabledFor(logging.INFO):
            # makeRecord + handle is what access.info does, minus the stack walk that finds the
            # caller's file and line, which the JSON line does not carry.
            access.handle(
                access.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "request", (), None,
                                  extra=extra)
            )  # fmt: skip
        return response
