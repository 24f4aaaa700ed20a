"""Waitress, signals and graceful drain.

On SIGTERM or SIGINT: /readyz turns 503 at once, requests in flight (and any that still arrive)
are served until none is left or TASK_MANAGER_DRAIN_SECONDS pass, spans are flushed, exit 0.
A second signal stops at once.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from flask import Flask
from waitress.server import create_server

from task_manager.runtime import runtime
from task_manager.server_activity import in_flight

log = logging.getLogger(__name__)

# How long a thread may hold the GIL while another wants it (CPython's default is 5 ms). Every
# request releases the GIL several times (each SQLite call, the log write, the socket send) and,
# with the 8 request threads busy, waited up to the whole interval to get it back: 0.5 ms took
# GET by id under wrk from about 600 to about 850 req/s with a better p99 (see the README).
GIL_SWITCH_INTERVAL_S = 0.0005


def tune_interpreter() -> None:
    """Interpreter settings for serving, applied once the app is built."""
    # What exists now (modules, the app, the engine) lives as long as the process: move it out of
    # the collector's generations so that collections under load do not walk it again and again
    # (shorter pauses, a better p99). No full collection first: it took 40-53 ms, a tenth of the
    # time to the first /readyz 200, for the start-up's few unreachable objects (bench/README.md),
    # which stay frozen. `task-manager serve` starts with the collector off (cli.main): on here.
    gc.freeze()
    gc.enable()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


class Server:
    """The API on waitress plus the metrics endpoint on its own port."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.state = runtime(app)
        settings = self.state.settings
        self.wsgi: Any = create_server(
            app,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            ident="task-manager",
            # Flask enforces MAX_BODY_BYTES with a problem+json 413; waitress' own cap is a
            # backstop above it.
            max_request_body_size=settings.max_body_bytes * 2,
            channel_timeout=settings.idle_timeout_seconds,
            # Idle connections are closed within a quarter of the timeout after it expires, which
            # bounds how long new clients wait once connection_limit connections are open.
            cleanup_interval=max(1, settings.idle_timeout_seconds // 4),
            connection_limit=settings.connection_limit,
            clear_untrusted_proxy_headers=True,
        )
        self.metrics_server: Any = self.state.metrics.serve(settings.host, settings.metrics_port)
        self._stop = threading.Event()
        self._signals = 0

    @property
    def port(self) -> int:
        return int(self.wsgi.effective_port)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: stopping without waiting")
            self._stop.set()
            return
        log.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
        self.state.draining.set()
        threading.Thread(target=self._drain, name="drain", daemon=True).start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.state.settings.drain_seconds
        while in_flight(self.wsgi) and time.monotonic() < deadline:
            time.sleep(0.05)
        if in_flight(self.wsgi):
            log.warning("drain period over with requests still in flight")
        self._stop.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        tune_interpreter()
        loop = threading.Thread(target=self.wsgi.run, name="waitress", daemon=True)
        loop.start()
        settings = self.state.settings
        log.info(
            "serving",
            extra={
                "host": settings.host,
                "port": self.port,
                "metrics_port": settings.metrics_port,
                "threads": settings.threads,
            },
        )
        while not self._stop.wait(0.2):
            if not loop.is_alive():
                log.error("the HTTP server loop stopped unexpectedly")
                return 1
        self.shutdown()
        log.info("stopped")
        return 0

    def shutdown(self) -> None:
        self.wsgi.close()
        self.wsgi.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        self.metrics_server.shutdown()
        self.state.tracing.shutdown()
        self.state.repository.engine.dispose()
