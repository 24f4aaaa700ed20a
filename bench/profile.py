"""In-process cost of one request, without waitress or wrk: where the service's time goes.

Builds the app as `task-manager serve` does (SQLite in a temporary directory, auth, metrics, tracing
at the bench's 10% to a local OTLP sink that drops spans, the access log written to /dev/null) and
calls the WSGI app directly. With --layers, the app is the dict baseline with the named layers of
the service (bench/floor_app.py) instead: what each layer costs on its own. Usage:

    python bench/profile.py [get|post|list|patch] [--requests N]        # µs per request
    python bench/profile.py get --layers none|tracing|"access log"|metrics|auth|all
    python bench/profile.py get --cprofile 30                            # top 30 functions
    uv run --with pyinstrument python bench/profile.py get --pyinstrument  # call tree

The µs figure is the process's CPU time per request (time.process_time: all its threads, so the
span exporter's share too), best of three rounds: other processes' load stretches wall time, far
less CPU time (cache and frequency effects remain).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from floor_app import LAYERS

from bench import TOKEN, _Sink

ROOT = Path(__file__).resolve().parents[1]
PAGE = 20


def _floor(settings: Any, layers: str) -> Any:
    from baseline_app import app
    from floor_app import install_layers

    presets = {"none": [], "all": list(LAYERS)}
    chosen = presets[layers] if layers in presets else [x.strip() for x in layers.split(",")]
    unknown = set(chosen) - set(LAYERS)
    if unknown:
        raise SystemExit(f"--layers: unknown {sorted(unknown)}; choose from {', '.join(LAYERS)}")
    install_layers(app, settings, chosen)
    return app


def _environ(method: str, path: str, body: bytes | None) -> tuple[dict[str, Any], bytes]:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(
        path=path,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}"},
        data=body,
        content_type="application/json" if body else None,
    )
    environ = builder.get_environ()
    return environ, environ["wsgi.input"].read()


def _print_cprofile(run: Callable[[], None], top: int, requests: int, out: Any) -> None:
    """cProfile's own and cumulative time per function, in µs per request."""
    bench_dir = sys.path.pop(0)  # this file would shadow the standard library's profile module
    try:
        import cProfile
        import pstats
    finally:
        sys.path.insert(0, bench_dir)
    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    calls = stats.total_calls / requests  # type: ignore[attr-defined]
    out.write(f"{calls:.0f} Python function calls per request (steady under load, unlike µs)\n")
    out.write(f"{'own µs':>8} {'cum µs':>8}  function (per request, under cProfile)\n")
    for (path, line, name), (_cc, _nc, own, cum, _callers) in rows[:top]:
        where = path.rsplit("site-packages/", 1)[-1].removeprefix(f"{ROOT}/")
        per = f"{own / requests * 1e6:8.1f} {cum / requests * 1e6:8.1f}"
        out.write(f"{per}  {where}:{line} {name}\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "scenario", choices=["get", "post", "list", "patch"], nargs="?", default="get"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sampled", type=float, default=0.1, help="trace sampling ratio")
    parser.add_argument("--pyinstrument", action="store_true", help="print a pyinstrument tree")
    parser.add_argument(
        "--cprofile", type=int, metavar="N", help="print the N functions with most own time"
    )
    parser.add_argument(
        "--layers",
        help="profile the dict baseline with these of the service's layers instead of the service "
        f"(comma-separated from: {', '.join(LAYERS)}; or none, or all)",
    )
    args = parser.parse_args()

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ.update(
        {
            "TASK_MANAGER_DATABASE_URL": f"sqlite:///{tempfile.mkdtemp()}/profile.db",
            "TASK_MANAGER_AUTH_TOKENS": f"bench:{TOKEN}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(args.sampled),
        }
    )
    from task_manager.app import create_app
    from task_manager.logging import configure_logging
    from task_manager.settings import Settings

    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 (the access log)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    app = create_app(settings) if args.layers is None else _floor(settings, args.layers)

    def call(environ: dict[str, Any], raw: bytes) -> tuple[str, bytes]:
        statuses: list[str] = []

        def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
            statuses.append(status)

        body = b"".join(app({**environ, "wsgi.input": io.BytesIO(raw)}, start_response))
        return statuses[0], body

    create = _environ("POST", "/api/v1/tasks", b'{"title": "bench task", "labels": ["bench"]}')
    task_id = json.loads(call(*create)[1])["id"]
    if args.scenario == "list":  # a full page, as bench.py's list returns (limit=20)
        for _ in range(PAGE):
            call(*create)
    scenarios: dict[str, tuple[dict[str, Any], bytes]] = {
        "get": _environ("GET", f"/api/v1/tasks/{task_id}", None),
        "post": create,
        "list": _environ("GET", f"/api/v1/tasks?limit={PAGE}", None),
        "patch": _environ("PATCH", f"/api/v1/tasks/{task_id}", b'{"priority": "high"}'),
    }
    request = scenarios[args.scenario]
    for _ in range(200):  # warm the statement caches
        status, body = call(*request)
        assert status.startswith("20"), (status, body)

    run: Callable[[], None] = lambda: [call(*request) for _ in range(args.requests)]  # noqa: E731
    if args.cprofile is not None:
        _print_cprofile(run, args.cprofile, args.requests, stdout)
        return 0
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()
        run()
        profiler.stop()
        stdout.write(profiler.output_text(unicode=True, color=False))
        return 0
    rounds = []
    for _ in range(3):
        start = time.process_time()
        run()
        rounds.append((time.process_time() - start) / args.requests * 1e6)
    stdout.write(
        f"{args.scenario}: {min(rounds):.0f} µs per request (CPU) "
        f"(rounds: {', '.join(f'{r:.0f}' for r in rounds)})\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
