"""`make bench` runs end to end: a short run of ci/bench.sh renders every row for all three apps.

No figure is asserted (the targets are judged on full runs, not in CI); only that the benchmark
still works and that the service answered every benchmark request with a 2xx.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("GET by id", "list", "POST", "PATCH")


def test_a_short_benchmark_run_reports_every_scenario_for_baseline_floor_and_service(
    tmp_path: Path,
) -> None:
    output = tmp_path / "results.md"
    subprocess.run(
        [str(ROOT / "ci" / "bench.sh"), "--seconds", "1", "--seed", "100", "--tasks", "300",
         "--output", str(output)],
        cwd=ROOT, check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    report = output.read_text()
    for scenario in SCENARIOS:
        row = re.search(rf"^\| {scenario} \| (.*) \|$", report, re.MULTILINE)
        assert row is not None, report
        baseline, floor, service, ratio, *_latencies, non2xx = row.group(1).split(" | ")
        assert float(baseline) > 0, row.group(0)
        assert float(service) > 0, row.group(0)
        assert re.fullmatch(r"\d+ \(\d+\.\d\dx\)", floor), row.group(0)
        assert re.fullmatch(r"\d+\.\d\dx", ratio), row.group(0)
        assert non2xx == "0", row.group(0)
    assert re.search(r"RSS of the service with (\d+) tasks stored: [\d.]+ MB", report), report
    assert re.search(r"Cold start to /readyz 200 \(existing database.*\): [\d.]+ s", report)
