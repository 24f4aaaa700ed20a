"""`make run` (ci/run-service.sh): starts the API, prints how to call it, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests
from support.net import free_ports
from support.paths import REPO_ROOT


def test_run_script_serves_with_the_printed_token_and_stops_cleanly_on_sigint(
    tmp_path: Path,
) -> None:
    port, metrics_port = free_ports(2)
    env = {
        **os.environ,
        "RUN_DIR": str(tmp_path),
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
    }
    output = tmp_path / "output.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(REPO_ROOT / "ci" / "run-service.sh")], env=env, stdout=sink, stderr=sink
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        text = output.read_text()
        token = re.search(r"export TOKEN=(\S+)", text)
        assert token, text
        assert f"curl -s -X POST {base}/api/v1/tasks" in text
        created = requests.post(
            base + "/api/v1/tasks",
            json={"title": "Try the API"},
            headers={"Authorization": f"Bearer {token.group(1)}"},
            timeout=10,
        )
        assert created.status_code == 201
        assert (tmp_path / "task-manager.db").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert '"message": "stopped"' in output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
