"""server_activity.in_flight reads waitress' internals: these tests drive a real waitress server
through each stage of a request and fail when a waitress upgrade changes what it reads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from task_manager.server_activity import in_flight
from waitress.server import create_server

Started = Callable[..., Any]


def _app(release: threading.Event) -> Callable[..., list[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            release.wait(10)
        body = b"x" * (int(environ.get("QUERY_STRING") or 0) or 2)
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return app


@pytest.fixture
def server() -> Iterator[tuple[Any, threading.Event]]:
    release = threading.Event()
    wsgi: Any = create_server(_app(release), host="127.0.0.1", port=0, threads=2)
    loop = threading.Thread(target=wsgi.run, daemon=True)
    loop.start()
    yield wsgi, release
    release.set()
    wsgi.close()
    wsgi.task_dispatcher.shutdown(cancel_pending=True, timeout=1)


def _eventually(check: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_the_waitress_internals_read_are_still_there(server: tuple[Any, threading.Event]) -> None:
    wsgi, _ = server
    assert isinstance(wsgi.active_channels, dict)
    assert isinstance(wsgi.task_dispatcher.active_count, int)
    assert len(wsgi.task_dispatcher.queue) == 0
    # Worker threads count as active until each has reached its wait for a task.
    assert _eventually(lambda: in_flight(wsgi) is False)


def test_a_request_being_received_is_in_flight(server: tuple[Any, threading.Event]) -> None:
    wsgi, _ = server
    with socket.create_connection(("127.0.0.1", wsgi.effective_port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
        assert _eventually(lambda: in_flight(wsgi))
        sock.sendall(b"-done!")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # Answered; the connection stays open and idle (keep-alive): nothing in flight.
        assert _eventually(lambda: not in_flight(wsgi))


def test_a_request_being_handled_is_in_flight(server: tuple[Any, threading.Event]) -> None:
    wsgi, release = server
    with socket.create_connection(("127.0.0.1", wsgi.effective_port)) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _eventually(lambda: wsgi.task_dispatcher.active_count > 0)
        assert in_flight(wsgi)
        release.set()
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert _eventually(lambda: not in_flight(wsgi))


def test_a_response_not_yet_sent_is_in_flight(server: tuple[Any, threading.Event]) -> None:
    wsgi, _ = server
    size = 8_000_000  # below waitress' outbuf high watermark: the app returns, the bytes wait
    with socket.create_connection(("127.0.0.1", wsgi.effective_port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(f"GET /?{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert _eventually(lambda: bool(wsgi.active_channels))
        time.sleep(0.5)  # handled by now; the client has read nothing
        assert wsgi.task_dispatcher.active_count == 0
        assert in_flight(wsgi)
        received = b""
        while not received.endswith(b"x" * 100) or len(received) < size:
            chunk = sock.recv(1 << 20)
            assert chunk, "the connection closed before the whole response"
            received += chunk
        assert _eventually(lambda: not in_flight(wsgi))
