#!/usr/bin/env python3
"""Writes the packaged chart's README to stdout: the chart-user sections of README.md (install,
values, kube-prometheus-stack, GitOps, configuration, observability, verifying a release), with
relative links made absolute so they work on Artifact Hub and in `helm show readme`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "Install with Helm",
    "kube-prometheus-stack integration",
    "GitOps (Argo CD and Flux)",
    "Configuration",
    "Observability",
    "Verifying a release",
)


def _home() -> str:
    (line,) = [x for x in (ROOT / "Chart.yaml").read_text().splitlines() if x.startswith("home:")]
    return line.split(":", 1)[1].strip()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def chart_readme(readme: str, home: str) -> str:
    intro, *rest = re.split(r"^(?=## )", readme, flags=re.M)
    sections = {part.splitlines()[0][3:].strip(): part for part in rest}
    missing = [name for name in SECTIONS if name not in sections]
    if missing:
        sys.exit(f"chart-readme: README.md has no section {missing}")
    repository = f"{home}/blob/main/README.md"
    body = intro.rstrip() + (
        f"\n\nThis is the chart's README. Developing the chart and the service (local clusters,"
        f" tests, benchmarks, CI): see the [repository README]({repository}).\n\n"
    )
    body += "".join(sections[name] for name in SECTIONS)
    kept = {_anchor(h) for h in re.findall(r"^#+ (.+)$", body, flags=re.M)}

    def link(match: re.Match[str]) -> str:
        target = match.group(2)
        if target.startswith("#"):
            return (
                match.group(0) if target[1:] in kept else f"{match.group(1)}({repository}{target})"
            )
        if re.match(r"^[a-z]+:", target):
            return match.group(0)
        return f"{match.group(1)}({home}/blob/main/{target})"

    return re.sub(r"(\[[^\]]*\])\(([^)\s]+)\)", link, body).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(chart_readme((ROOT / "README.md").read_text(), _home()))
