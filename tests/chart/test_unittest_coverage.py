"""The helm-unittest suites (tests/chart/*_test.yaml) cover every template and every guard rail."""

from __future__ import annotations

import re

import yaml

from .conftest import REPO_ROOT

SUITES = sorted((REPO_ROOT / "tests" / "chart").glob("*_test.yaml"))


def _suites() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in SUITES]


def test_every_template_has_a_unittest_suite() -> None:
    covered = {t for suite in _suites() for t in suite["templates"]}
    templates = {
        str(p.relative_to(REPO_ROOT))
        for pattern in ("templates/**/*.yaml", "templates/NOTES.txt", "charts/*/templates/*.yaml")
        for p in REPO_ROOT.glob(pattern)
    }
    assert templates, "no templates found"
    assert sorted(templates - covered) == []


def test_every_guard_rail_has_a_failing_unittest() -> None:
    validate = (REPO_ROOT / "templates" / "_validate.tpl").read_text()
    messages = re.findall(r'fail (?:\(printf )?"([^"]+)"', validate)
    assert len(messages) >= 6
    patterns = [
        a["failedTemplate"]["errorPattern"]
        for suite in _suites()
        for test in suite["tests"]
        for a in test["asserts"]
        if "failedTemplate" in a
    ]
    for message in messages:
        literal = message.split("%", 1)[0]  # the message up to its first printf verb
        # A pattern matches the message when one is a (long enough) prefix of the other.
        covered = any(
            len(p) >= 30 and (p.startswith(literal) or literal.startswith(p)) for p in patterns
        )
        assert covered, f"no failedTemplate test: {message}"
