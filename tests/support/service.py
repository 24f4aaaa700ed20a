"""Real `task-manager serve` processes on free loopback ports, started exactly as the image runs
them, and the CLI run as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from task_manager.logging import LOG_FLUSH_INTERVAL_S

from support.net import LoopbackServer, free_ports

TASK_MANAGER = str(Path(sys.executable).with_name("task-manager"))
START_TIMEOUT = 60.0  # the CI machine is shared and can be very slow to import

ALICE_TOKEN = "alice-secret-token-1"
BOB_TOKEN = "bob-secret-token-22"
TOKENS = f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}"


@dataclass
class Service(LoopbackServer):
    """A running `task-manager serve` process."""

    process: subprocess.Popen[bytes] = field(kw_only=True)
    log_path: Path = field(kw_only=True)
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """The output so far, once the service's log buffer has been flushed (a running service
        writes its lines every LOG_FLUSH_INTERVAL_S)."""
        if self.process.poll() is None:
            size, deadline = -1, time.monotonic() + 10
            while time.monotonic() < deadline and self.log_path.stat().st_size != size:
                size = self.log_path.stat().st_size
                time.sleep(3 * LOG_FLUSH_INTERVAL_S)
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"service not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


ServiceFactory = Callable[..., Service]


def base_env() -> dict[str, str]:
    """What every service process inherits: PATH, HOME and coverage's subprocess settings."""
    inherited = {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **inherited}


def start_service(tmp: Path, env: Mapping[str, str] | None = None, *, wait: bool = True) -> Service:
    port, metrics_port = free_ports(2)
    full_env = {
        **base_env(),
        "TASK_MANAGER_HOST": "127.0.0.1",
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
        "TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp}/tasks.db",
        "TASK_MANAGER_AUTH_TOKENS": TOKENS,
        "TASK_MANAGER_DRAIN_SECONDS": "5",
        **(env or {}),
    }
    log_path = tmp / f"service-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TASK_MANAGER, "serve"],
            env=full_env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(port, metrics_port, process=process, log_path=log_path, env=full_env)
    if wait:
        try:
            service.wait_ready()
        except Exception:
            service.stop(signal.SIGKILL)
            raise
    return service


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASK_MANAGER, *args],
        env={**base_env(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
