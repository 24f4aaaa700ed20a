"""The GitHub workflows stay thin, pinned and wired to scripts that exist."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = sorted((ROOT / ".github").glob("**/*.yml"))
# owner/repo[/path]@<40 hex> # vX.Y.Z
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>.+?)\s*$")


def uses_lines(path: Path) -> list[str]:
    return [m["ref"] for line in path.read_text().splitlines() if (m := USES_LINE.match(line))]


def test_workflows_exist_and_parse() -> None:
    names = {p.name for p in WORKFLOW_FILES}
    assert {"ci.yml", "release.yml", "action.yml"} <= names
    for path in WORKFLOW_FILES:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_third_party_action_is_pinned_by_full_sha_with_version_comment(path: Path) -> None:
    refs = uses_lines(path)
    assert refs, f"{path} uses no action at all"
    unpinned = [r for r in refs if not r.startswith("./") and not PINNED.match(r)]
    assert unpinned == [], f"pin these by full commit SHA with a '# vX.Y.Z' comment: {unpinned}"


def test_one_action_is_pinned_to_one_sha_everywhere() -> None:
    seen: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES:
        for ref in uses_lines(path):
            if not ref.startswith("./"):
                action, _, pin = ref.partition("@")
                seen.setdefault(action, set()).add(pin)
    drift = {action: pins for action, pins in seen.items() if len(pins) > 1}
    assert drift == {}


def test_the_pin_check_rejects_tags_and_short_shas() -> None:
    assert not PINNED.match("actions/checkout@v5")
    assert not PINNED.match("actions/checkout@08c6903c # v5.0.0")
    assert not PINNED.match("actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8")
    assert PINNED.match("actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0")


def test_workflow_steps_call_scripts_not_inline_programs() -> None:
    """A run step is a make target, a ci/ script or a one-line helper: the logic lives in ci/."""
    allowed = re.compile(r"^(make [a-z-]+|ci/[\w-]+\.sh\b.*|cosign sign .*|if \[\[ .*)$")
    for path in WORKFLOW_FILES:
        doc = yaml.safe_load(path.read_text())
        jobs = doc.get("jobs", {}) if "jobs" in doc else {"composite": doc["runs"]}
        for name, job in jobs.items():
            for step in job.get("steps", []):
                if "run" in step:
                    for line in step["run"].strip().splitlines():
                        assert allowed.match(line.strip()), f"{path.name} {name}: {line!r}"


def test_workflow_scripts_are_executable_when_present() -> None:
    scripts = set()
    for path in WORKFLOW_FILES:
        scripts |= set(re.findall(r"\bci/[\w-]+\.sh\b", path.read_text()))
    assert scripts
    for script in sorted(scripts):
        target = ROOT / script
        if target.exists():
            assert target.stat().st_mode & 0o111, f"{script} is not executable"
