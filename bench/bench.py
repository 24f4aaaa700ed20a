"""Benchmark: the service on SQLite (auth, metrics and 10% tracing on) against the dict baseline.

Reports req/s, p50 and p99 from wrk at 32 connections for GET by id, list, POST and PATCH, side by
side in one run with the baseline and the floor (the baseline plus the service's per-request
layers, bench/floor_app.py); cold start to /readyz 200; RSS after 10,000 tasks. Usage: ci/bench.sh
(installs wrk from Debian's packages). Traffic stays on 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TASK_MANAGER = str(Path(PYTHON).with_name("task-manager"))
TOKEN = "bench-token-0123456789"
THREADS = 8
CONNECTIONS = 32


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports, all held open while choosing so that they differ (as
    tests/support/net.py does; bench/ runs without the tests on its path)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts and drops spans, so export costs are real."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class Target:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    headers: dict[str, str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return kb / 1024


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return time.monotonic() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.01)
    raise RuntimeError("not ready")


def service_env(workdir: Path, sink_port: int) -> tuple[dict[str, str], int]:
    port, metrics_port = free_ports(2)
    env = {
        "PATH": os.environ["PATH"],
        "TASK_MANAGER_HOST": "127.0.0.1",
        "TASK_MANAGER_PORT": str(port),
        "TASK_MANAGER_METRICS_PORT": str(metrics_port),
        "TASK_MANAGER_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "TASK_MANAGER_AUTH_TOKENS": f"bench:{TOKEN}",
        "TASK_MANAGER_THREADS": str(THREADS),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    if "MALLOC_ARENA_MAX" in os.environ:  # to compare glibc arena settings for RSS
        env["MALLOC_ARENA_MAX"] = os.environ["MALLOC_ARENA_MAX"]
    return env, port


def start_service(workdir: Path, sink_port: int) -> tuple[Target, float]:
    env, port = service_env(workdir, sink_port)
    process = subprocess.Popen(
        [TASK_MANAGER, "serve"], env=env, cwd=workdir, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    ready = wait_ready(url, process)
    return Target("service", process, url, {"Authorization": f"Bearer {TOKEN}"}), ready


def start_app(
    name: str, script: str, env: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Target:
    """One of the bench's own apps (bench/SCRIPT PORT THREADS)."""
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / script), str(port), str(THREADS)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    return Target(name, process, url, headers or {})


def start_baseline() -> Target:
    return start_app("baseline", "baseline_app.py")


def start_floor(workdir: Path, sink_port: int) -> Target:
    env, _ = service_env(workdir, sink_port)
    return start_app("floor", "floor_app.py", env, {"Authorization": f"Bearer {TOKEN}"})


def seed(target: Target, count: int) -> list[str]:
    session = requests.Session()
    session.headers.update(target.headers)

    def one(i: int) -> str:
        response = session.post(
            target.url + "/api/v1/tasks",
            json={"title": f"task {i}", "labels": ["bench"], "priority": "normal"},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


LUA = """
local ids = {%(ids)s}
local i = 0
local headers = {%(headers)s}
request = function()
  i = i + 1
  local id = ids[(i %% #ids) + 1]
  %(body)s
end
"""

SCENARIOS = {
    "GET by id": 'return wrk.format("GET", "/api/v1/tasks/" .. id, headers)',
    "list": 'return wrk.format("GET", "/api/v1/tasks?limit=20", headers)',
    "POST": 'return wrk.format("POST", "/api/v1/tasks", headers, '
    '\'{"title": "bench task", "labels": ["bench"]}\')',
    "PATCH": 'return wrk.format("PATCH", "/api/v1/tasks/" .. id, headers, '
    '\'{"priority": "high", "title": "patched \' .. i .. \'"}\')',
}


def wrk(
    target: Target, scenario: str, ids: list[str], seconds: int, workdir: Path
) -> dict[str, float]:
    headers = {**target.headers, "Content-Type": "application/json"}
    script = workdir / f"{target.name}-{scenario.replace(' ', '_')}.lua"
    body = SCENARIOS[scenario]
    script.write_text(
        LUA
        % {
            "ids": ",".join(f'"{i}"' for i in ids[:2000]),
            "headers": ",".join(f'["{k}"]="{v}"' for k, v in headers.items()),
            "body": body,
        }
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(script), target.url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": _percentile(out, 50),
        "p99": _percentile(out, 99),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _percentile(out: str, pct: int) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {pct}th percentile in wrk's output:\n{out}")
    return _ms(match.group(1))


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))  # type: ignore[union-attr]
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    if text.endswith("s"):
        return value * 1000
    return value


def cold_start(workdir: Path, sink_port: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        target, ready = start_service(workdir, sink_port)
        target.stop()
        times.append(ready)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per scenario")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks stored before RSS")
    parser.add_argument("--seed", type=int, default=2000, help="tasks each app holds for wrk")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run ci/bench.sh", file=sys.stderr)
        return 1
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_port = sink.server_address[1]
    workdir = Path(tempfile.mkdtemp(prefix="tm-bench-"))
    results: dict[str, dict[str, dict[str, float]]] = {}
    service, _ = start_service(workdir, sink_port)
    baseline = start_baseline()
    floor = start_floor(workdir, sink_port)
    targets = (baseline, floor, service)
    try:
        ids = {t.name: seed(t, args.seed) for t in targets}
        for scenario in SCENARIOS:
            for target in targets:
                results.setdefault(scenario, {})[target.name] = wrk(
                    target, scenario, ids[target.name], args.seconds, workdir
                )
                print(scenario, target.name, results[scenario][target.name], flush=True)
        count = _count(service)
        if count < args.tasks:
            seed(service, args.tasks - count)
        rss = service.rss_mb()
        total = _count(service)
    finally:
        for target in targets:
            target.stop()
    cold_existing = cold_start(workdir, sink_port, 3)
    fresh = Path(tempfile.mkdtemp(prefix="tm-bench-fresh-"))
    cold_fresh = cold_start(fresh, sink_port, 1)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(fresh, ignore_errors=True)
    sink.shutdown()

    report = render(results, rss, total, cold_existing, cold_fresh, args.seconds)
    args.output.write_text(report)
    print(report)
    return 0


def _count(target: Target) -> int:
    total = 0
    cursor = None
    session = requests.Session()
    session.headers.update(target.headers)
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = session.get(target.url + "/api/v1/tasks", params=params, timeout=30).json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


def render(
    results: dict[str, dict[str, dict[str, float]]],
    rss: float,
    total: int,
    cold_existing: float,
    cold_fresh: float,
    seconds: int,
) -> str:
    load = os.getloadavg()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"(load average at the end {load[0]:.1f}), wrk -t2 -c{CONNECTIONS} -d{seconds}s, "
        f"waitress threads={THREADS}; service on SQLite with auth, metrics and tracing "
        "(parentbased_traceidratio 0.1, OTLP/HTTP to a local sink). Floor: the baseline plus "
        "the service's own per-request layers (tracing, metrics, access log, auth), no storage "
        "(bench/floor_app.py).",
        "",
        "| Scenario | Baseline req/s | Floor req/s | Service req/s | Service / baseline | "
        "Baseline p50 / p99 ms | Floor p50 / p99 ms | Service p50 / p99 ms | Service non-2xx |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, by in results.items():
        b, f, s = by["baseline"], by["floor"], by["service"]
        lines.append(
            f"| {scenario} | {b['rps']:.0f} | {f['rps']:.0f} ({f['rps'] / b['rps']:.2f}x) | "
            f"{s['rps']:.0f} | {s['rps'] / b['rps']:.2f}x | {b['p50']:.1f} / {b['p99']:.1f} | "
            f"{f['p50']:.1f} / {f['p99']:.1f} | {s['p50']:.1f} / {s['p99']:.1f} | "
            f"{s['errors']:.0f} |"
        )
    lines += [
        "",
        f"- Cold start to /readyz 200 (existing database, median of 3): {cold_existing:.2f} s",
        f"- Cold start to /readyz 200 (fresh database, migrations run): {cold_fresh:.2f} s",
        f"- RSS of the service with {total} tasks stored: {rss:.1f} MB",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
