"""`make dev`: the end-to-end stack (stack.py) run until Ctrl-C, with how to query it.

ci/dev.sh runs this file with the import path pytest gives the e2e tier (`tests/` for `support`,
this directory for `stack`). The Jaeger and Prometheus that `make tools` builds have no web UI
(docs/observability.md), so the banner points at their HTTP query APIs with examples that work as
printed; tests/e2e/test_make_dev.py runs them.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from stack import Stack, render

# The API on its usual port when that is free (TASK_MANAGER_PORT overrides it), else any free port.
DEFAULT_API_PORT = 8080
TRACE_LIMIT = 5


def api_port(wanted: int) -> int | None:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", wanted))
    except OSError:
        return None
    return wanted


def promql_duration(seconds: float) -> str:
    return f"{int(seconds) // 60}m" if seconds % 60 == 0 else f"{int(seconds)}s"


def request_rate_query(stack: Stack) -> str:
    """Requests per second by route and status, from the app's request histogram
    (service/task_manager/metrics.py), over Grafana's rate interval: 4 scrape intervals."""
    window = promql_duration(4 * stack.scrape_interval_seconds(stack.app))
    selector = f'http_server_request_duration_seconds_count{{job="{stack.app}"}}'
    return f"sum by (route, status) (rate({selector}[{window}]))"


def banner(stack: Stack) -> str:
    tasks = f"{stack.api_url}/api/v1/tasks"
    auth = shlex.quote(f"Authorization: Bearer {stack.token}")
    traces = f"{stack.jaeger_url}/api/traces?" + urlencode(
        {"service": stack.service_name, "limit": TRACE_LIMIT}
    )
    query = f"{stack.prometheus_url}/api/v1/query"
    scrape = promql_duration(stack.scrape_interval_seconds(stack.app))
    return f"""
Task Manager dev stack is up (logs in {stack.dir}, removed on exit):
  API          {tasks}
  token        {stack.token}
  OpenAPI      {stack.api_url}/openapi.json
  Jaeger API   {traces}
  Prometheus   {query}?query=up

Jaeger and Prometheus here are built from their Go modules without web UIs: use their HTTP query
APIs as below. In a cluster the upstream images (the chart's defaults) have the UIs; see
docs/observability.md.

Create a task and list the tasks:
  curl -sS --fail-with-body -H {auth} -H 'Content-Type: application/json' -d '{{"title": "Try the stack"}}' {tasks}
  curl -sS --fail-with-body -H {auth} {tasks}
The last {TRACE_LIMIT} traces of {stack.service_name} in Jaeger (a few seconds after the requests):
  curl -sS --fail-with-body {shlex.quote(traces)}
Requests per second by route and status in Prometheus (after two scrapes, {scrape} apart):
  curl -sS --fail-with-body {query} --data-urlencode {shlex.quote("query=" + request_rate_query(stack))}

Ctrl-C stops everything."""  # noqa: E501


def first_exited(stack: Stack) -> str | None:
    for proc in stack.procs:
        if proc.popen.poll() is not None:
            return f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}"
    return None


def main() -> int:
    # SIGTERM stops the stack the way Ctrl-C does, whenever it comes (even during start-up).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    port = api_port(int(os.environ.get("TASK_MANAGER_PORT", DEFAULT_API_PORT)))
    with tempfile.TemporaryDirectory(prefix="task-manager-dev-") as tmp:
        stack = Stack(render(), Path(tmp), api_port=port)
        code = 0
        try:
            stack.start()
            print(banner(stack), flush=True)
            while (exited := first_exited(stack)) is None:
                time.sleep(1)
            print(exited, file=sys.stderr)
            code = 1
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C must not cut the clean-up short (each stop is bounded).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("stopping...", flush=True)
            stack.stop()
    print("stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
