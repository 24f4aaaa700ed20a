"""The built image runs the service under the chart's securityContext and stops cleanly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from support.container import Container


def test_image_declares_the_charts_non_root_user_exec_entrypoint_and_oci_labels(
    image_config: dict[str, Any], app_version: str, chart_user: str
) -> None:
    config = image_config
    assert config["User"] == "10001:10001"
    assert config["User"] == chart_user
    assert config["Entrypoint"] == ["task-manager"]
    assert config["Cmd"] == ["serve"]
    labels = config["Labels"]
    assert (
        labels["org.opencontainers.image.source"] == "https://github.com/task-manager/task-manager"
    )
    assert labels["org.opencontainers.image.version"] == app_version
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_runtime_venv_holds_no_build_or_dev_tools(service: Container) -> None:
    probe = (
        "import importlib.util as u; "
        "print(' '.join(m for m in ('uv', 'pip', 'hatchling', 'pytest', 'ruff', 'mypy') "
        "if u.find_spec(m)))"
    )
    result = service.exec("python3", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
    assert service.exec("sh", "-c", "command -v uv").returncode != 0


def test_livez_answers_200(service: Container) -> None:
    response = requests.get(f"{service.url}/livez", timeout=5)
    assert response.status_code == 200


def test_readyz_answers_200_with_sqlite_on_the_data_volume(service: Container) -> None:
    response = requests.get(f"{service.url}/readyz", timeout=5)
    assert response.status_code == 200
    listing = service.exec("ls", "/var/lib/task-manager")
    assert "tasks.db" in listing.stdout.split(), listing


def test_process_runs_as_uid_10001_without_capabilities_or_privilege_escalation(
    service: Container,
) -> None:
    status = dict(
        line.split(":", 1) for line in service.exec("cat", "/proc/1/status").stdout.splitlines()
    )
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["10001"] * 4
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapPrm"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"


def test_root_filesystem_is_not_writable_by_the_service(service: Container) -> None:
    result = service.exec("touch", "/opt/task-manager/written")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_authenticated_create_then_get_round_trip(service: Container) -> None:
    created = requests.post(
        f"{service.url}/api/v1/tasks",
        json={"title": "ship the image"},
        headers=service.auth,
        timeout=5,
    )
    assert created.status_code == 201, created.text
    task = created.json()
    fetched = requests.get(
        f"{service.url}/api/v1/tasks/{task['id']}", headers=service.auth, timeout=5
    )
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["title"] == "ship the image"
    assert fetched.json()["id"] == task["id"]


def test_api_without_token_answers_401(service: Container) -> None:
    response = requests.get(f"{service.url}/api/v1/tasks", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_port_serves_request_histogram(service: Container) -> None:
    requests.get(f"{service.url}/api/v1/tasks", headers=service.auth, timeout=5)
    response = requests.get(service.metrics_url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE http_server_request_duration_seconds histogram" in response.text


def test_build_info_metric_carries_the_images_source_revision(
    service: Container, image_config: dict[str, Any]
) -> None:
    revision = image_config["Labels"]["org.opencontainers.image.revision"]
    response = requests.get(service.metrics_url, timeout=5)
    assert response.status_code == 200
    build_info = [
        line for line in response.text.splitlines() if line.startswith("task_manager_build_info{")
    ]
    assert len(build_info) == 1, build_info
    assert f'revision="{revision}"' in build_info[0]
    assert 'revision="unknown"' not in build_info[0]


def test_image_healthcheck_reports_healthy(service: Container) -> None:
    deadline = time.monotonic() + 20
    while service.state()["health"] != "healthy" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert service.state()["health"] == "healthy"


def test_sigterm_exits_zero_within_the_grace_period(
    fresh_service: Container, grace_period_s: int
) -> None:
    elapsed = fresh_service.stop(grace_period_s)
    state = fresh_service.state()
    logs = fresh_service.logs()
    assert state["status"] == "exited"
    assert state["exit_code"] == "0", logs
    assert elapsed < grace_period_s, f"took {elapsed:.1f}s: docker had to SIGKILL"
    assert "Traceback" not in logs


def test_tasks_survive_a_restart_on_the_data_volume(
    start_service: Callable[..., Container], data_volume: str, grace_period_s: int
) -> None:
    first = start_service(data_volume=data_volume)
    created = requests.post(
        f"{first.url}/api/v1/tasks",
        json={"title": "outlive the pod"},
        headers=first.auth,
        timeout=5,
    )
    assert created.status_code == 201, created.text
    assert first.stop(grace_period_s) < grace_period_s
    assert first.state()["exit_code"] == "0", first.logs()

    second = start_service(data_volume=data_volume, token=first.token)
    fetched = requests.get(
        f"{second.url}/api/v1/tasks/{created.json()['id']}", headers=second.auth, timeout=5
    )
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["title"] == "outlive the pod"
