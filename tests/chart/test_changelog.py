"""CHANGELOG.md ships in the chart package and Chart.yaml's artifacthub.io/changes lists exactly
the entries of the chart version's section."""

from __future__ import annotations

import re

import yaml

from .conftest import REPO_ROOT

CHART = yaml.safe_load((REPO_ROOT / "Chart.yaml").read_text())
CHANGELOG = (REPO_ROOT / "CHANGELOG.md").read_text()
KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def _section(version: str) -> str:
    match = re.search(rf"^## {re.escape(version)}\b.*?$(.*?)(?=^## |\Z)", CHANGELOG, re.M | re.S)
    assert match, f"CHANGELOG.md has no section for chart version {version}"
    return match.group(1)


def test_the_chart_version_has_a_changelog_section_saying_whether_it_migrates() -> None:
    section = _section(CHART["version"])
    assert re.search(r"^Migrates: (yes|no)\b", section, re.M), "say whether the release migrates"


def test_artifacthub_changes_are_the_changelog_entries_of_the_version() -> None:
    changes = yaml.safe_load(CHART["annotations"]["artifacthub.io/changes"])
    section = _section(CHART["version"])
    entries: list[tuple[str, str]] = []
    kind = ""
    for line in section.splitlines():
        if line.startswith("### "):
            kind = line[4:].strip().lower()
        elif line.startswith("- "):
            entries.append((kind, line[2:].strip()))
    assert entries
    assert {k for k, _ in entries} <= KINDS
    assert [(c["kind"], c["description"]) for c in changes] == entries
