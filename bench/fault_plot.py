"""The timeline picture of one fault: requests/s, errors/s and p99 over time, the fault shaded.

Rendered from the fault's data file (bench/faults.py writes both) with matplotlib's Agg backend and
no date or version in the PNG, so the same data always gives the same bytes: a test re-renders
each committed picture and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# PNG text chunks: the fixed ones only (matplotlib would add its version as "Software").
METADATA: dict[str, str | None] = {"Software": None, "Title": None}
SERIES = (
    ("rps", "requests/s", "tab:blue"),
    ("errors", "errors/s", "tab:red"),
    ("p99_ms", "p99 (ms)", "tab:purple"),
)


def render(data: dict[str, Any], path: Path) -> None:
    rows = data["timeline"]
    times = [row["t"] for row in rows]
    figure = Figure(figsize=(8, 5), dpi=80)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(SERIES), 1, sharex=True)
    start, end = data["window"]
    for ax, (key, label, colour) in zip(axes, SERIES, strict=True):
        ax.step(times, [row[key] for row in rows], where="post", color=colour, linewidth=1.2)
        ax.axvspan(start, end, color="tab:orange", alpha=0.2, linewidth=0)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    axes[0].set_title(f"{data['fault']} ({data['database']}): fault window shaded")
    axes[-1].set_xlabel("seconds since the load started")
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=METADATA)
