"""The benchmark's picture: throughput and p99 per scenario for each column, as grouped bars.

Drawn only from the data bench.py writes (bench/results.json), with matplotlib's Agg backend, the
default style and no date or software version in the PNG, so the same data always gives the same
bytes (tests/ci/test_bench_picture.py re-renders the committed data and compares).

Usage: python bench/plot.py [DATA.json [PICTURE.png]]   # re-draws the committed picture
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "results.json"
PICTURE = ROOT / "docs" / "bench-results.png"

# One colour per column, the same in both panels.
_COLOURS = ("#9e9e9e", "#d95f02", "#7570b3", "#1b9e77", "#66a61e", "#e7298a")


def render_picture(data: dict[str, Any], path: Path) -> None:
    scenarios = list(data["scenarios"])
    columns = data["columns"]
    width = 0.8 / len(columns)
    with plt.style.context("default"):
        figure, panels = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
        for panel, (metric, label) in zip(
            panels, (("rps", "requests per second (higher is better)"),
                     ("p99", "p99 latency, ms (lower is better)")), strict=True,
        ):  # fmt: skip
            for i, column in enumerate(columns):
                positions = [
                    s + (i - (len(columns) - 1) / 2) * width for s in range(len(scenarios))
                ]
                values = [data["scenarios"][s][column][metric] for s in scenarios]
                panel.bar(positions, values, width, label=column, color=_COLOURS[i % len(_COLOURS)])
            panel.set_xticks(range(len(scenarios)), scenarios)
            panel.set_title(label)
            panel.grid(axis="y", alpha=0.3)
            panel.set_axisbelow(True)
        handles, labels = panels[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=len(columns), frameon=False)
        figure.suptitle(
            f"make bench: {data['wrk']}, waitress threads={data['threads']}, "
            f"{data['cores']} cores (load average {data['load_average']:.1f})"
        )
        figure.tight_layout(rect=(0, 0.07, 1, 1))
        figure.savefig(path, format="png", metadata={"Software": None})
        plt.close(figure)


def main() -> int:
    data_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    picture = Path(sys.argv[2]) if len(sys.argv) > 2 else PICTURE
    render_picture(json.loads(data_path.read_text()), picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
