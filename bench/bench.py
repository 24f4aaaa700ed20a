"""Benchmark: the service on SQLite (auth, metrics and 10% tracing on) against its peers.

Reports req/s, p50 and p99 from wrk at 32 connections for GET by id, list, POST and PATCH, side by
side in one run with the dict baseline (bench/baseline_app.py), the seed as written (the baseline
with the seed's observability stack, bench/seed_app.py), the floor (the baseline plus the
service's per-request layers, bench/floor_app.py) and the service traced at 100%; cold starts to
the first /readyz 200; RSS after 10,000 tasks; the in-process cost per request against the bare
app (bench/profile.py); and whether each goal of bench/README.md is met. Writes the report
(bench/results.md), its data (bench/results.json) and the picture drawn from that data
(bench/plot.py). Usage: ci/bench.sh (installs wrk from Debian's packages). Traffic stays on
127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import json
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from plot import PICTURE, render_picture

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


def service_env(workdir: Path, sink_port: int, sampled: float = 0.1) -> tuple[dict[str, str], int]:
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
        "OTEL_TRACES_SAMPLER_ARG": str(sampled),
    }
    if "MALLOC_ARENA_MAX" in os.environ:  # to compare glibc arena settings for RSS
        env["MALLOC_ARENA_MAX"] = os.environ["MALLOC_ARENA_MAX"]
    return env, port


def start_service(
    workdir: Path, sink_port: int, name: str = "service", sampled: float = 0.1
) -> tuple[Target, float]:
    env, port = service_env(workdir, sink_port, sampled)
    process = subprocess.Popen(
        [TASK_MANAGER, "serve"], env=env, cwd=workdir, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    ready = wait_ready(url, process)
    return Target(name, process, url, {"Authorization": f"Bearer {TOKEN}"}), ready


def start_app(
    name: str, script: str, env: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[Target, float]:
    """One of the bench's own apps (bench/SCRIPT PORT THREADS), and its time to the first 200."""
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / script), str(port), str(THREADS)],
        env={"PATH": os.environ["PATH"], **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    ready = wait_ready(url, process)
    return Target(name, process, url, headers or {}), ready


def start_baseline() -> Target:
    return start_app("baseline", "baseline_app.py")[0]


def start_seed_as_written() -> tuple[Target, float]:
    return start_app("seed as written", "seed_app.py")


def start_floor(workdir: Path, sink_port: int) -> Target:
    env, _ = service_env(workdir, sink_port)
    return start_app("floor", "floor_app.py", env, {"Authorization": f"Bearer {TOKEN}"})[0]


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


def cold_start(start: Callable[[], tuple[Target, float]], runs: int) -> float:
    """Median time from exec to the first /readyz 200 over ``runs`` starts."""
    times = []
    for _ in range(runs):
        target, ready = start()
        target.stop()
        times.append(ready)
    return statistics.median(times)


def in_process(requests_per_round: int) -> dict[str, float]:
    """µs per request in-process (bench/profile.py): the service and the bare baseline app."""
    costs = {}
    for scenario in ("get", "post"):
        for app, layers in (("service", []), ("bare", ["--layers", "none"])):
            out = subprocess.run(
                [PYTHON, str(ROOT / "bench" / "profile.py"), scenario, *layers,
                 "--requests", str(requests_per_round)],
                capture_output=True, text=True, check=True, timeout=300, cwd=ROOT / "bench",
            ).stdout  # fmt: skip
            costs[f"{app} {scenario}"] = float(re.search(r"(\d+) µs", out).group(1))  # type: ignore[union-attr]
    return costs


# The columns of the run, in the order they are driven and drawn.
COLUMNS = ("baseline", "seed as written", "floor", "service", "service 100% traced")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per scenario")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks stored before RSS")
    parser.add_argument("--seed", type=int, default=2000, help="tasks each app holds for wrk")
    parser.add_argument(
        "--profile-requests", type=int, default=2000, help="requests per in-process round"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--picture", type=Path, default=PICTURE)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run ci/bench.sh", file=sys.stderr)
        return 1
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_port = sink.server_address[1]
    workdir = Path(tempfile.mkdtemp(prefix="tm-bench-"))
    traced = workdir / "traced"
    traced.mkdir()
    results: dict[str, dict[str, dict[str, float]]] = {}
    service, _ = start_service(workdir, sink_port)
    targets = (
        start_baseline(),
        start_seed_as_written()[0],
        start_floor(workdir, sink_port),
        service,
        start_service(traced, sink_port, "service 100% traced", sampled=1.0)[0],
    )
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
    cold = {
        "service": cold_start(lambda: start_service(workdir, sink_port), 3),
        "seed as written": cold_start(start_seed_as_written, 3),
        "baseline": cold_start(lambda: start_app("baseline", "baseline_app.py"), 3),
    }
    fresh = Path(tempfile.mkdtemp(prefix="tm-bench-fresh-"))
    cold["service, fresh database"] = cold_start(lambda: start_service(fresh, sink_port), 1)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(fresh, ignore_errors=True)
    sink.shutdown()
    costs = in_process(args.profile_requests)

    data = {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
        "wrk": f"wrk -t2 -c{CONNECTIONS} -d{args.seconds}s",
        "threads": THREADS,
        "columns": list(COLUMNS),
        "scenarios": results,
        "cold_start_s": {k: round(v, 3) for k, v in cold.items()},
        "rss_mb": round(rss, 1),
        "tasks_stored": total,
        "in_process_us": costs,
    }
    args.data.write_text(json.dumps(data, indent=2) + "\n")
    render_picture(data, args.picture)
    report = render(data, args.picture, args.output)
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


Data = dict[str, Any]


def goals(data: Data) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for each goal of issue 16 (bench/README.md), from one run's data."""
    by = data["scenarios"]
    rows = []
    floors = {"GET by id": 0.6, "POST": 0.5, "list": 0.45, "PATCH": 0.45}
    for scenario, floor in floors.items():
        ratio = by[scenario]["service"]["rps"] / by[scenario]["baseline"]["rps"]
        rows.append((f"{scenario} >= {floor}x the baseline", f"{ratio:.2f}x", ratio >= floor))
    over_seed = [by[s]["service"]["rps"] / by[s]["seed as written"]["rps"] for s in by]
    rows.append(
        ("every scenario >= 1.5x the seed as written",
         ", ".join(f"{s} {r:.2f}x" for s, r in zip(by, over_seed, strict=True)),
         min(over_seed) >= 1.5)
    )  # fmt: skip
    cost = [1 - by[s]["service 100% traced"]["rps"] / by[s]["service"]["rps"] for s in by]
    rows.append(
        ("tracing at 100% costs <= 20% of the 10% throughput",
         ", ".join(f"{s} {c:.0%}" for s, c in zip(by, cost, strict=True)), max(cost) <= 0.2)
    )  # fmt: skip
    worse = [s for s in by if by[s]["service"]["p99"] > by[s]["seed as written"]["p99"]]
    rows.append(
        ("p99 no worse than the seed as written",
         ", ".join(f"{s} {by[s]['service']['p99']:.1f} vs {by[s]['seed as written']['p99']:.1f} ms"
                   for s in by), not worse)
    )  # fmt: skip
    cold = data["cold_start_s"]
    ratio = cold["service"] / cold["seed as written"]
    rows.append(
        ("cold start <= 1.5x the seed as written's",
         f"{cold['service']:.2f} s vs {cold['seed as written']:.2f} s ({ratio:.2f}x)", ratio <= 1.5)
    )  # fmt: skip
    rows.append(
        (f"RSS <= 80 MB after {data['tasks_stored']} tasks", f"{data['rss_mb']:.1f} MB",
         data["rss_mb"] <= 80)
    )  # fmt: skip
    errors = sum(by[s][c]["errors"] for s in by for c in ("service", "service 100% traced"))
    rows.append(("0 non-2xx from the service", f"{errors:.0f}", errors == 0))
    us = data["in_process_us"]
    for scenario, limit in (("get", 3), ("post", 4)):
        ratio = us[f"service {scenario}"] / us[f"bare {scenario}"]
        rows.append(
            (f"in-process {scenario.upper()} <= {limit}x bare",
             f"{us[f'service {scenario}']:.0f} vs {us[f'bare {scenario}']:.0f} µs ({ratio:.1f}x)",
             ratio <= limit)
        )  # fmt: skip
    return rows


def _table_head(columns: Sequence[str], last: str) -> list[str]:
    """A results table's header row and rule: the scenario, one cell per column, ``last``."""
    return [
        "| Scenario | " + " | ".join(c.capitalize() for c in columns) + f" | {last} |",
        "| --- " * (len(columns) + 2) + "|",
    ]


def render(data: Data, picture: Path, output: Path) -> str:
    by = data["scenarios"]
    columns = data["columns"]
    lines = [
        f"Measured {data['measured']} on {data['cores']} cores (load average at the end "
        f"{data['load_average']:.1f}), {data['wrk']}, waitress threads={data['threads']}; "
        "service on SQLite with auth, metrics and tracing (parentbased_traceidratio 0.1, "
        "OTLP/HTTP to a local sink; the last column at 1.0). Seed as written: the baseline with "
        "prometheus_flask_exporter, the OTel Flask instrumentation exporting every span to the "
        "console and a JSON log line per operation (bench/seed_app.py). Floor: the baseline plus "
        "the service's own per-request layers (tracing, metrics, access log, auth), no storage "
        "(bench/floor_app.py). Data: bench/results.json.",
        "",
        f"![Throughput and p99 per scenario]({os.path.relpath(picture, output.parent)})",
        "",
        "Requests per second (x the baseline):",
        "",
        *_table_head(columns, "Service / seed"),
    ]
    for scenario, row in by.items():
        base = row["baseline"]["rps"]
        cells = [f"{row[c]['rps']:.0f} ({row[c]['rps'] / base:.2f}x)" for c in columns]
        over_seed = row["service"]["rps"] / row["seed as written"]["rps"]
        lines.append(f"| {scenario} | " + " | ".join(cells) + f" | {over_seed:.2f}x |")
    lines += [
        "",
        "Latency p50 / p99 in ms, and the service's non-2xx responses:",
        "",
        *_table_head(columns, "Service non-2xx"),
    ]
    for scenario, row in by.items():
        cells = [f"{row[c]['p50']:.1f} / {row[c]['p99']:.1f}" for c in columns]
        lines.append(
            f"| {scenario} | " + " | ".join(cells) + f" | {row['service']['errors']:.0f} |"
        )
    cold = data["cold_start_s"]
    us = data["in_process_us"]
    lines += [
        "",
        f"- Cold start to the first /readyz 200 (median of 3): service {cold['service']:.2f} s, "
        f"seed as written {cold['seed as written']:.2f} s, baseline {cold['baseline']:.2f} s; "
        f"service on a fresh database (migrations run) {cold['service, fresh database']:.2f} s",
        f"- RSS of the service with {data['tasks_stored']} tasks stored: {data['rss_mb']:.1f} MB",
        "- In-process CPU time per request (bench/profile.py, best of 3 rounds): "
        + ", ".join(
            f"{op.upper()} {us[f'service {op}']:.0f} µs against {us[f'bare {op}']:.0f} µs bare"
            for op in ("get", "post")
        ),
        "",
        "| Goal | Measured | Met |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {goal} | {measured} | {'met' if met else 'not met'} |"
              for goal, measured, met in goals(data)]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
