"""`make dev` as a user runs it: what it prints works, and Ctrl-C stops everything it started.

The test runs `make dev` in a session of its own, reads the banner, calls every printed URL, runs
the printed curl examples as they are (create and list tasks, the last traces from Jaeger's API, the
request rate from Prometheus' API) until they return the traffic just made, then sends SIGINT to
the process group (what Ctrl-C in a terminal does) and checks that every process `make dev` had
started is gone and its ports are closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
# Bounds, each well inside the test's timeout: `make dev` up (setup and the tools scripts find
# everything cached in this tier), traces exported (two batch delays), the request rate computed
# (two scrapes 30 s apart, plus jitter), everything stopped (each process gets 15 s after SIGTERM).
STARTUP_SECONDS = 240
TRACES_SECONDS = 60
RATE_SECONDS = 150
STOP_SECONDS = 90
BANNER_END = "Ctrl-C stops everything."
URL = re.compile(r"https?://[^\s'\"]+")


# --- the processes of a tree, from /proc --------------------------------------------------------


def stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """Every live process below `root`: pid -> (start time, command line)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (s := stat(int(entry.name))) is not None:
            parents[int(entry.name)] = s[0]
    found: dict[int, tuple[str, str]] = {}
    for pid in parents:
        p = pid
        while p in parents and p != root:
            p = parents[p]
        if p == root and pid != root and (s := stat(pid)) is not None:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                found[pid] = (s[2], argv.decode(errors="replace").strip())
    return found


def still_running(started: dict[int, tuple[str, str]]) -> dict[int, str]:
    """The processes of `started` that still run (same pid and start time, not a zombie)."""
    running = {}
    for pid, (start, cmdline) in started.items():
        s = stat(pid)
        if s is not None and s[2] == start and s[1] != "Z":
            running[pid] = cmdline
    return running


# --- what `make dev` prints ---------------------------------------------------------------------


def wait_for_banner(make: subprocess.Popen[bytes], output: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if BANNER_END in text:
            return text
        assert make.poll() is None, f"make dev exited with {make.returncode}:\n{text}"
        time.sleep(0.5)
    raise AssertionError(f"make dev printed no banner in {STARTUP_SECONDS}s:\n{text}")


def listed(banner: str) -> dict[str, str]:
    """The `  Name   value` lines under the banner's first line."""
    block = banner.split("dev stack is up", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r"^  (\S+(?: \S+)*) {2,}(\S+)$", block, re.M))


def examples(banner: str) -> list[list[str]]:
    return [shlex.split(line) for line in banner.splitlines() if line.startswith("  curl ")]


def example(commands: list[list[str]], path: str, posts: bool = False) -> list[str]:
    """The printed curl command for URL path `path` (the one sending data when `posts`)."""
    found = [
        c
        for c in commands
        if any(urlsplit(w).path == path for w in c if URL.fullmatch(w)) and ("-d" in c) == posts
    ]
    assert len(found) == 1, f"no single example for {path} (posts={posts}) among {commands}"
    return found[0]


def run_json(command: list[str]) -> Any:
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (
        f"{shlex.join(command)}: {done.returncode} {done.stdout} {done.stderr}"
    )
    return json.loads(done.stdout)


def eventually(what: str, seconds: float, attempt: Callable[[], Any]) -> Any:
    """attempt() until it returns something truthy, else fail with its last value."""
    deadline = time.monotonic() + seconds
    while True:
        result = attempt()
        if result or time.monotonic() > deadline:
            assert result, f"{what}: nothing after {seconds}s"
            return result
        time.sleep(2)


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((parts.hostname or "", parts.port or 80)) == 0


@pytest.mark.timeout(STARTUP_SECONDS + TRACES_SECONDS + RATE_SECONDS + STOP_SECONDS + 60)
def test_make_dev_prints_working_api_urls_and_examples_and_ctrl_c_stops_every_process(
    tmp_path: Path,
) -> None:
    output = tmp_path / "make-dev.out"
    env = {**os.environ, "TASK_MANAGER_PORT": str(free_port())}
    with output.open("wb") as sink:
        make = subprocess.Popen(
            ["make", "dev"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    started: dict[int, tuple[str, str]] = {}
    try:
        banner = wait_for_banner(make, output)
        started = descendants(make.pid)
        for program in ("jaeger --config", "otelcol --config", "prometheus --config", "serve"):
            assert any(program in cmdline for _, cmdline in started.values()), (program, started)

        # Every address printed is an HTTP API, none a web UI (the tools built here have none).
        printed = listed(banner)
        assert {"API", "token", "OpenAPI", "Jaeger API", "Prometheus"} <= printed.keys(), banner
        for url in URL.findall(banner):
            assert urlsplit(url).path.startswith(("/api/", "/openapi.json")), url

        token = printed["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(printed["API"], headers=auth, timeout=10).status_code == 200
        assert requests.get(printed["OpenAPI"], timeout=10).json()["openapi"]
        jaeger = requests.get(printed["Jaeger API"], timeout=10)
        assert jaeger.status_code == 200, jaeger.text
        assert "data" in jaeger.json(), jaeger.text
        prometheus = requests.get(printed["Prometheus"], timeout=10)
        assert prometheus.status_code == 200, prometheus.text
        assert prometheus.json()["status"] == "success", prometheus.text

        # The examples, run as printed.
        commands = examples(banner)
        api_path = urlsplit(printed["API"]).path
        create = example(commands, api_path, posts=True)
        list_tasks = example(commands, api_path)
        assert f"Bearer {token}" in " ".join(create)
        created = run_json(create)
        assert created["title"] in {t["title"] for t in run_json(list_tasks)["items"]}

        traces_example = example(commands, "/api/traces")

        def api_traces() -> list[dict[str, Any]]:
            return [
                t
                for t in run_json(traces_example)["data"] or []
                if any(api_path in s["operationName"] for s in t["spans"])
            ]

        traces = eventually("the traces example", TRACES_SECONDS, api_traces)
        service = parse_qs(urlsplit(printed["Jaeger API"]).query)["service"]
        assert {p["serviceName"] for t in traces for p in t["processes"].values()} == set(service)

        rate_example = example(commands, "/api/v1/query")

        def api_rate() -> list[dict[str, Any]]:
            run_json(list_tasks)  # traffic between the scrapes
            result = run_json(rate_example)["data"]["result"]
            return [
                r
                for r in result
                if r["metric"].get("route") == api_path and float(r["value"][1]) > 0
            ]

        eventually("the request-rate example", RATE_SECONDS, api_rate)

        # Ctrl-C: SIGINT to the foreground process group.
        os.killpg(make.pid, signal.SIGINT)
        make.wait(STOP_SECONDS)
        assert "stopped" in output.read_text(errors="replace").splitlines()
        assert still_running(started) == {}
        for url in (printed["API"], printed["Jaeger API"], printed["Prometheus"]):
            assert not port_open(url), f"{url} still answers after Ctrl-C"
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        for pid in still_running(started):
            os.kill(pid, signal.SIGKILL)
