"""Fixtures of the CI contract tier: a real `task-manager serve` for the README's API examples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.net import free_ports

TASK_MANAGER = str(Path(sys.executable).with_name("task-manager"))
README_TOKEN = "readme-example-token-0123456789"


@dataclass
class RunningService:
    url: str
    token: str
    log_path: Path


@pytest.fixture
def readme_service(tmp_path: Path) -> Iterator[RunningService]:
    """`task-manager serve` on free loopback ports with SQLite in tmp_path; always stopped."""
    port, metrics_port = free_ports(2)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TASK_MANAGER_HOST": "127.0.0.1",
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
        "TASK_MANAGER_DATABASE_URL": f"sqlite:///{tmp_path}/tasks.db",
        "TASK_MANAGER_AUTH_TOKENS": f"readme:{README_TOKEN}",
        "TASK_MANAGER_DRAIN_SECONDS": "1",
    }
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TASK_MANAGER, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"service exited {process.returncode}:\n{log_path.read_text()}")
            try:
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not ready in 60s:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield RunningService(url, README_TOKEN, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
