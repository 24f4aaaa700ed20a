"""`make dev`: the end-to-end stack (stack.py) run until Ctrl-C.

ci/dev.sh runs this file with the import path pytest gives the e2e tier (`tests/` for `support`,
this directory for `stack`).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from stack import running_stack


def main() -> int:
    # The API on its usual port 8080 when that is free, else on any free port.
    api_port: int | None = int(os.environ.get("TASK_MANAGER_PORT", "8080"))
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", api_port))
    except OSError:
        api_port = None
    with running_stack(api_port=api_port) as stack:
        print(
            f"""
Task Manager dev stack is up (logs in {stack.dir}):
  API          {stack.api_url}/api/v1/tasks   (Authorization: Bearer {stack.token})
  OpenAPI      {stack.api_url}/openapi.json
  Jaeger API   {stack.jaeger_url}/api/traces?service=task-manager
  Prometheus   {stack.prometheus_url}/api/v1/query?query=up
Try: curl -H 'Authorization: Bearer {stack.token}' {stack.api_url}/api/v1/tasks
Ctrl-C stops everything.""",
            flush=True,
        )
        stop = {"now": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stop["now"]:
                for proc in stack.procs:
                    if proc.popen.poll() is not None:
                        print(f"{proc.name} exited:\n{proc.tail()}", file=sys.stderr)
                        return 1
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        print("stopping...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
