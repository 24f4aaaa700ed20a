"""`make bench` runs end to end: a short run of ci/bench.sh renders every row for all five columns.

No figure is asserted (the targets are judged on full runs, not in CI); only that the benchmark
still works, that the service answered every benchmark request with a 2xx, that the data, the
picture and the goal table come out, and that the picture is the one drawn from that data.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("GET by id", "list", "POST", "PATCH")
COLUMNS = ("baseline", "seed as written", "floor", "service", "service 100% traced")
RATE = r"\d+ \(\d+\.\d\dx\)"


def test_a_short_benchmark_run_reports_every_scenario_for_every_column(tmp_path: Path) -> None:
    output, data, picture = tmp_path / "results.md", tmp_path / "results.json", tmp_path / "b.png"
    subprocess.run(
        [str(ROOT / "ci" / "bench.sh"), "--seconds", "1", "--seed", "100", "--tasks", "300",
         "--profile-requests", "100", "--output", str(output), "--data", str(data),
         "--picture", str(picture)],
        cwd=ROOT, check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    report = output.read_text()
    for scenario in SCENARIOS:
        rates, latencies = re.findall(rf"^\| {scenario} \| (.*) \|$", report, re.MULTILINE)
        *by_column, over_seed = rates.split(" | ")
        assert len(by_column) == len(COLUMNS), rates
        assert all(re.fullmatch(RATE, cell) for cell in by_column), rates
        assert re.fullmatch(r"\d+\.\d\dx", over_seed), rates
        *by_column, non2xx = latencies.split(" | ")
        assert all(re.fullmatch(r"[\d.]+ / [\d.]+", cell) for cell in by_column), latencies
        assert non2xx == "0", latencies
    assert re.search(r"RSS of the service with (\d+) tasks stored: [\d.]+ MB", report), report
    assert re.search(r"Cold start .*: service [\d.]+ s, seed as written [\d.]+ s", report), report
    assert re.search(r"In-process .*: GET \d+ µs against \d+ µs bare", report), report
    assert len(re.findall(r"^\| .* \| (?:met|not met) \|$", report, re.MULTILINE)) == 12, report
    assert "![Throughput and p99 per scenario](b.png)" in report
    measured = json.loads(data.read_text())
    assert measured["columns"] == list(COLUMNS)
    redrawn = tmp_path / "redrawn.png"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plot.py"), str(data), str(redrawn)],
        check=True, timeout=120,
    )  # fmt: skip
    assert redrawn.read_bytes() == picture.read_bytes()
