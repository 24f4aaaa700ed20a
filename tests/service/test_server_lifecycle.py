"""`task-manager serve`: probes, the separate metrics port and signal handling."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
from support.net import free_port
from support.service import ALICE_TOKEN, Service, ServiceFactory


def test_livez_and_readyz_answer_200_when_the_database_is_at_head(sqlite_service: Service) -> None:
    live = requests.get(sqlite_service.url + "/livez", timeout=5)
    ready = requests.get(sqlite_service.url + "/readyz", timeout=5)
    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"draining": "ok", "schema": "ok", "database": "ok"}


def test_metrics_are_served_on_their_own_port_and_not_on_the_api_port(
    sqlite_service: Service,
) -> None:
    metrics = requests.get(sqlite_service.metrics_url, timeout=5)
    assert metrics.status_code == 200
    assert "task_manager_build_info{" in metrics.text
    on_api_port = requests.get(sqlite_service.url + "/metrics", timeout=5)
    assert on_api_port.status_code == 404


def test_sigterm_exits_zero_after_logging_the_shutdown(service_factory: ServiceFactory) -> None:
    service = service_factory()
    assert service.stop(signal.SIGTERM) == 0
    messages = [json.loads(line)["message"] for line in service.log().splitlines() if line]
    assert "shutdown requested" in messages
    assert messages[-1] == "stopped"


def test_in_flight_request_completes_after_sigterm_while_readyz_turns_503(
    service_factory: ServiceFactory,
) -> None:
    # A slow client: it sends the headers and half the body, so the request is in flight
    # (waitress has accepted it) when SIGTERM arrives.
    service = service_factory({"TASK_MANAGER_DRAIN_SECONDS": "20"})
    body = json.dumps({"title": "written during drain"}).encode()
    result: dict[str, requests.Response] = {}
    first_chunk_sent = threading.Event()

    def slow_body():  # type: ignore[no-untyped-def]
        yield body[:5]
        first_chunk_sent.set()  # runs once requests has written the headers and the first bytes
        time.sleep(2.5)
        yield body[5:]

    def send() -> None:
        result["response"] = requests.post(
            service.url + "/api/v1/tasks",
            data=slow_body(),
            headers={
                "Authorization": f"Bearer {ALICE_TOKEN}",
                "Content-Type": "application/json",
            },
            timeout=30,
        )

    sender = threading.Thread(target=send)
    sender.start()
    assert first_chunk_sent.wait(30)
    time.sleep(0.5)  # let waitress read them: the request is now in flight
    service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    readyz = None
    while time.monotonic() < deadline:
        readyz = requests.get(service.url + "/readyz", timeout=5)
        if readyz.status_code == 503:
            break
        time.sleep(0.05)
    assert readyz is not None
    assert readyz.status_code == 503
    assert readyz.json()["checks"]["draining"] == "draining"
    sender.join(30)
    assert result["response"].status_code == 201
    assert result["response"].json()["title"] == "written during drain"
    assert service.process.wait(30) == 0


def test_serve_starts_with_the_collector_off_and_serves_with_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cli.main turns the cyclic collector off for the start-up; tune_interpreter must freeze
    # what the start-up made and turn it back on before the first request, and a start-up that
    # fails must not leave it off.
    import gc

    from task_manager import cli, server

    seen: dict[str, object] = {}

    def run(self: server.Server) -> int:
        seen["while starting"] = gc.isenabled()
        server.tune_interpreter()
        seen["when serving"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        self.shutdown()
        return 0

    monkeypatch.setattr(server.Server, "run", run)
    monkeypatch.setenv("TASK_MANAGER_DATABASE_URL", f"sqlite:///{tmp_path}/gc.db")
    monkeypatch.setenv("TASK_MANAGER_AUTH_TOKENS", f"alice:{ALICE_TOKEN}")
    monkeypatch.setenv("TASK_MANAGER_PORT", str(free_port()))
    monkeypatch.setenv("TASK_MANAGER_METRICS_PORT", str(free_port()))
    try:
        assert cli.main(["serve"]) == 0
        assert seen["while starting"] is False
        assert seen["when serving"] is True
        assert isinstance(seen["frozen"], int)
        assert seen["frozen"] > 0
        assert gc.isenabled()
        monkeypatch.setenv("TASK_MANAGER_PORT", "not a port")
        assert cli.main(["serve"]) == cli.EXIT_CONFIG
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
