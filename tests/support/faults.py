"""Fault injectors (a small full disk, a collector that is down, black-holes or is slow, abusive
clients) and the checks of what the database holds afterwards."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import create_engine, text
from task_manager.storage.engine import normalise_url

from support.load import Load

# --- what the database holds ---------------------------------------------------------------


@dataclass(frozen=True)
class WriteCheck:
    lost: list[str]  # acknowledged with 2xx, not stored (or stored under another id)
    half_applied: list[str]  # stored without all of its labels or its idempotency key

    @property
    def ok(self) -> bool:
        return not self.lost and not self.half_applied


def check_writes(database_url: str, load: Load) -> WriteCheck:
    """Compares what the load wrote with what the database holds, straight from the tables."""
    engine = create_engine(normalise_url(database_url))
    pattern = f"fault {load.run_id}-%"
    try:
        with engine.connect() as connection:
            tasks = dict(
                connection.execute(
                    text("SELECT title, id FROM tasks WHERE title LIKE :p"), {"p": pattern}
                ).all()
            )
            labels: dict[str, set[str]] = {}
            for title, label in connection.execute(
                text(
                    "SELECT t.title, l.label FROM tasks t JOIN task_labels l ON l.task_id = t.id "
                    "WHERE t.title LIKE :p"
                ),
                {"p": pattern},
            ):
                labels.setdefault(title, set()).add(label)
            keys = {
                key: task_id
                for key, task_id in connection.execute(
                    text("SELECT key, task_id FROM idempotency_keys WHERE key LIKE :p"),
                    {"p": f"key-{load.run_id}-%"},
                )
            }
    finally:
        engine.dispose()
    lost = [title for title, id_ in load.acked.items() if str(tasks.get(title)) != id_]
    half_applied = [
        write.title
        for write in load.writes
        if (write.title in tasks)
        != (write.key in keys and str(keys[write.key]) == str(tasks.get(write.title)))
        or (write.title in tasks and labels.get(write.title, set()) != set(write.labels))
    ]
    return WriteCheck(lost, half_applied)


def integrity_check(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


# --- a small disk ----------------------------------------------------------------------------


@contextmanager
def small_tmpfs(size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted in a temporary directory (root only); always unmounted."""
    directory = Path(tempfile.mkdtemp(prefix="tm-tmpfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def fill(directory: Path) -> Path:
    """Writes a file until the file system is full; deleting it frees the space again."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 512):  # down to the last free block
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


# --- a trace collector ---------------------------------------------------------------------------


class OtlpSink:
    """A minimal OTLP/HTTP receiver on a fixed loopback port that counts the spans it is sent;
    ``delay`` seconds before each answer make it a slow collector."""

    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.port = port
        self.delay = delay
        self.spans = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(
                    len(scope.spans)
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                )
                time.sleep(sink.delay)
                with sink._lock:
                    sink.spans += count
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def black_hole(port: int) -> Iterator[None]:
    """A port that completes TCP handshakes (the kernel's backlog) and never reads or answers."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    try:
        yield
    finally:
        sock.close()


# --- abusive clients -----------------------------------------------------------------------------


class Clients:
    """Raw sockets of misbehaving clients against one loopback port; all closed by close()."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        self.sockets.append(sock)
        return sock

    def slowloris(self, count: int, interval: float = 0.5) -> None:
        """``count`` connections that send a request line and then one header byte every
        ``interval`` seconds, never finishing the headers."""
        socks = [self._connect() for _ in range(count)]
        for sock in socks:
            sock.sendall(b"GET /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")

        def drip() -> None:
            while not self._stop.wait(interval):
                for sock in socks:
                    with suppress(OSError):
                        sock.send(b"a")

        self._start(drip)

    def idle_keep_alive(self, count: int) -> int:
        """Opens ``count`` connections at once, each sending one request and then staying open
        and idle; returns how many were answered within a second (past the connection limit the
        rest wait in the listen backlog)."""
        socks = [self._connect() for _ in range(count)]
        for sock in socks:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answered, deadline = 0, time.monotonic() + 1.0
        for sock in socks:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                answered += sock.recv(4096).startswith(b"HTTP/1.1 200")
            except OSError:
                continue
        return answered

    def oversized_headers(self, count: int, size: int = 300_000) -> list[int]:
        """Requests with a header larger than waitress accepts; the status of each answer."""
        statuses = []
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                with suppress(OSError):
                    sock.sendall(
                        b"GET /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                        + b"a" * size
                        + b"\r\n\r\n"
                    )
                try:
                    head = sock.recv(64)
                    statuses.append(int(head.split()[1]) if head else 0)
                except (OSError, IndexError, ValueError):
                    statuses.append(0)
        return statuses

    def never_read(self, count: int, token: str, pipelined: int = 50) -> None:
        """Connections that pipeline many list requests and never read a byte of the answers."""
        request = (
            b"GET /api/v1/tasks?limit=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
        ) * pipelined
        for _ in range(count):
            sock = self._connect()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with suppress(OSError):
                sock.sendall(request)

    def _start(self, target: object) -> None:
        thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self.sockets:
            with suppress(OSError):
                sock.close()
        self.sockets.clear()
