"""A bounded load against the API from inside the cluster, run by tests/cluster in a pod.

Sends requests at a fixed rate through the Service name (cluster DNS, kube-proxy), each on a new
connection, alternating a create (with an Idempotency-Key) and a read of a task it created. Stops
when the stop file appears or at the time limit, whichever is first, then prints one JSON line:
sent, ok, failed, the first errors, and the ids of every create answered 201 (the acknowledged
writes, which the test then looks for). Standard library only: it runs on the app image's Python.

    python3 loadgen.py BASE_URL TOKEN_FILE RATE MAX_SECONDS STOP_FILE
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def main(base: str, token_file: str, rate: float, max_seconds: float, stop_file: str) -> None:
    with open(token_file) as tokens:
        token = tokens.read().split(":", 1)[1].split()[0]
    lock = threading.Lock()
    result: dict[str, Any] = {"sent": 0, "ok": 0, "failed": 0, "errors": [], "acked": []}

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers |= {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")

    def one(n: int) -> None:
        try:
            with lock:
                known = result["acked"][-1] if result["acked"] else None
            if n % 2 == 0 or known is None:
                status, task = call("POST", "/api/v1/tasks", {"title": f"load {n}"})
                if status == 201:
                    with lock:
                        result["acked"].append(task["id"])
            else:
                status, _ = call("GET", f"/api/v1/tasks/{known}")
            ok = 200 <= status < 300
            error = None if ok else f"{n}: HTTP {status}"
        except urllib.error.HTTPError as e:
            ok, error = False, f"{n}: HTTP {e.code} {e.read()[:200]!r}"
        except Exception as e:  # every failure is counted and reported
            ok, error = False, f"{n}: {type(e).__name__}: {e}"
        with lock:
            result["ok" if ok else "failed"] += 1
            if error and len(result["errors"]) < 10:
                result["errors"].append(error)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        n = 0
        while time.monotonic() - start < max_seconds and not os.path.exists(stop_file):
            pool.submit(one, n)
            n += 1
            result["sent"] = n
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
    result["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    base_url, tokens, rate_s, seconds_s, stop = sys.argv[1:6]
    main(base_url, tokens, float(rate_s), float(seconds_s), stop)
