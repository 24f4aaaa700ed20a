"""Bounded load against a running service, recorded request by request, for the fault suite.

Writers POST tasks (each with its own title, labels and Idempotency-Key, so that what the database
holds afterwards can be compared with what was acknowledged), readers GET tasks already written,
and a prober asks /readyz. Every loop stops at max_seconds or max_requests, whichever comes first.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Sample:
    """One request: ``status`` 0 means no HTTP answer (refused, reset or timed out)."""

    kind: str  # "write", "read" or "probe"
    start: float  # time.monotonic()
    end: float
    status: int
    problem: bool = False  # answered with problem+json

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Write:
    title: str
    labels: tuple[str, ...]
    key: str


@dataclass
class Load:
    """Threads of bounded load; use as a context manager (stops and joins on exit)."""

    url: str
    token: str
    writers: int = 2
    readers: int = 1
    probe_interval: float = 0.1
    pause: float = 0.01  # between two requests of one thread: the load is bounded, not a flood
    timeout: float = 10.0
    max_seconds: float = 120.0
    max_requests: int = 20_000
    samples: list[Sample] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # title -> task id, 2xx answered
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    t0: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._count = 0
        self._lock = threading.Lock()

    # --- control ---------------------------------------------------------------------------

    def __enter__(self) -> Load:
        self.t0 = time.monotonic()
        workers: list[tuple[str, Callable[[int], None]]] = [
            *(("writer", self._writer) for _ in range(self.writers)),
            *(("reader", self._reader) for _ in range(self.readers)),
        ]
        if self.probe_interval > 0:
            workers.append(("prober", self._prober))
        for number, (name, target) in enumerate(workers):
            thread = threading.Thread(
                target=target, args=(number,), name=f"load-{name}-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self.t0 < self.max_seconds

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _next(self) -> bool:
        with self._lock:
            self._count += 1
            return self._count <= self.max_requests and self.running()

    # --- workers ---------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def _send(self, session: requests.Session, kind: str, method: str, path: str,
              **kwargs: Any) -> requests.Response | None:  # fmt: skip
        start = time.monotonic()
        response: requests.Response | None = None
        try:
            response = session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException:
            session.close()  # a fresh connection for the next request
        end = time.monotonic()
        status = response.status_code if response is not None else 0
        problem = response is not None and response.headers.get("Content-Type") == PROBLEM_JSON
        self.samples.append(Sample(kind, start, end, status, problem))
        return response

    def _writer(self, number: int) -> None:
        session = self._session()
        n = 0
        while self._next():
            n += 1
            tag = f"{self.run_id}-{number}-{n}"
            write = Write(f"fault {tag}", (f"f-{tag}", "fault"), f"key-{tag}")
            self.writes.append(write)
            response = self._send(
                session, "write", "POST", "/api/v1/tasks",
                json={"title": write.title, "labels": list(write.labels)},
                headers={"Idempotency-Key": write.key},
            )  # fmt: skip
            if response is not None and response.status_code == 201:
                self.acked[write.title] = response.json()["id"]
            self._stop.wait(self.pause)

    def _reader(self, _number: int) -> None:
        session = self._session()
        n = 0
        while self._next():
            n += 1
            ids = list(self.acked.values())
            if ids and n % 2:
                self._send(session, "read", "GET", f"/api/v1/tasks/{ids[n % len(ids)]}")
            else:
                self._send(session, "read", "GET", "/api/v1/tasks?limit=5&label=fault")
            self._stop.wait(self.pause)

    def _prober(self, _number: int) -> None:
        session = requests.Session()
        while self.running():
            self._send(session, "probe", "GET", "/readyz")
            self._stop.wait(self.probe_interval)

    # --- figures ---------------------------------------------------------------------------

    def api(self) -> list[Sample]:
        return [s for s in self.samples if s.kind != "probe"]

    def probes(self) -> list[Sample]:
        return [s for s in self.samples if s.kind == "probe"]


def percentile(values: Iterable[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def timeline(samples: Iterable[Sample], t0: float, bucket: float = 0.5) -> list[dict[str, float]]:
    """Per bucket of completion time: requests/s, errors/s (not 2xx or no answer), p99 in ms."""
    buckets: dict[int, list[Sample]] = {}
    for sample in samples:
        buckets.setdefault(int((sample.end - t0) // bucket), []).append(sample)
    rows = []
    for index in range(max(buckets, default=-1) + 1):
        group = buckets.get(index, [])
        rows.append(
            {
                "t": round(index * bucket, 3),
                "rps": round(len(group) / bucket, 1),
                "errors": round(sum(not s.ok for s in group) / bucket, 1),
                "p99_ms": round(percentile((s.seconds * 1000 for s in group), 99), 1),
            }
        )
    return rows


class RssSampler:
    """Samples a process' resident set every ``interval`` seconds; ``peak_mb`` is the highest seen
    (or the kernel's own high-water mark, VmHWM, when the process is still there to ask)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _read(self, field_name: str) -> int:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        found = re.search(rf"^{field_name}:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) if found else 0

    def current_mb(self) -> float:
        return self._read("VmRSS") / 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._read("VmRSS"), self._read("VmHWM"))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak_kb = max(self.peak_kb, self._read("VmHWM"))

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024
