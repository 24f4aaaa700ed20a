"""The chart's PrometheusRule, rendered by helm and checked by the real promtool.

The rule groups are rendered from the chart (release "task-manager" in namespace "tm", the names the
unit tests in tests/chart/rules/ use), written as a plain rules file, linted with
`promtool check rules`, and unit-tested with `promtool test rules` against synthetic series that
make each alert fire and keep it silent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
RULE_TESTS = sorted((Path(__file__).parent / "rules").glob("*.test.yaml"))
RUNBOOK = ROOT / "docs" / "runbook.md"

# Values that turn the PrometheusRule on for a cluster that has the prometheus-operator CRDs.
RENDER_ARGS = [
    "--namespace", "tm",
    "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions", "monitoring.coreos.com/v1",
    "--set", "metrics.prometheusRule.enabled=true",
]  # fmt: skip


# Values a rule test file is rendered with (the others use the chart's defaults).
RULE_TEST_VALUES = {
    "custom-slo.test.yaml": [
        "--set", "metrics.prometheusRule.slo.availability.objective=99",
        "--set", "metrics.prometheusRule.slo.latency.objective=95",
        "--set", "metrics.prometheusRule.slo.latency.thresholdSeconds=1.0",
    ],
}  # fmt: skip


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} missing: run `make tools`")
    return str(path)


def render_rule_groups(*extra: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [tool("helm"), "template", "task-manager", str(ROOT), *RENDER_ARGS, *extra],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rules = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "PrometheusRule"]
    assert len(rules) == 1, "expected exactly one PrometheusRule in the rendered chart"
    return rules[0]["spec"]["groups"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def groups() -> list[dict[str, Any]]:
    return render_rule_groups()


def write_rules(d: Path, groups: list[dict[str, Any]]) -> None:
    (d / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory, groups: list[dict[str, Any]]) -> Path:
    d = tmp_path_factory.mktemp("rules")
    write_rules(d, groups)
    for test in RULE_TESTS:
        shutil.copy(test, d / test.name)
    return d


def alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for g in groups for r in g["rules"] if "alert" in r]


def promtool(cwd: Path, *args: str) -> None:
    """Runs promtool in ``cwd`` and fails with its output unless it succeeds."""
    result = subprocess.run([tool("promtool"), *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_rules_pass_promtool_check(rules_dir: Path) -> None:
    promtool(rules_dir, "check", "rules", "rules.yaml")


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_alerts_fire_and_stay_silent_as_the_unit_tests_expect(
    rules_dir: Path, test_file: Path, tmp_path: Path
) -> None:
    if test_file.name in RULE_TEST_VALUES:
        rules_dir = tmp_path
        write_rules(rules_dir, render_rule_groups(*RULE_TEST_VALUES[test_file.name]))
        shutil.copy(test_file, rules_dir / test_file.name)
    promtool(rules_dir, "test", "rules", test_file.name)


def test_the_alerts_issue_4_asks_for_exist(groups: list[dict[str, Any]]) -> None:
    names = {a["alert"] for a in alerts(groups)}
    assert {
        "TaskManagerAvailabilityBudgetBurnFast",
        "TaskManagerAvailabilityBudgetBurnSlow",
        "TaskManagerLatencyBudgetBurnFast",
        "TaskManagerLatencyBudgetBurnSlow",
        "TaskManagerHighErrorRatio",
        "TaskManagerPodNotReady",
        "TaskManagerCollectorDroppingSpans",
    } <= names


def test_every_alert_has_summary_description_and_a_runbook_section(
    groups: list[dict[str, Any]],
) -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), flags=re.M)
    }
    for alert in alerts(groups):
        ann = alert["annotations"]
        assert ann["summary"].strip(), alert["alert"]
        assert ann["description"].strip(), alert["alert"]
        url, _, anchor = ann["runbook_url"].partition("#")
        assert url.endswith("/docs/runbook.md"), alert["alert"]
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in docs/runbook.md"
        assert alert["labels"]["severity"] in {"critical", "warning"}


def test_every_alert_is_unit_tested_both_firing_and_silent(groups: list[dict[str, Any]]) -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for test_file in RULE_TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in alerts(groups)}
    assert names - fired == set(), "alerts no unit test makes fire"
    assert names - silent == set(), "alerts no unit test proves silent"


def test_rules_select_the_release_namespace_and_service(groups: list[dict[str, Any]]) -> None:
    other = render_rule_groups("--namespace", "shop", "--set", "fullnameOverride=tasks")
    text = yaml.safe_dump(other)
    assert 'namespace="shop"' in text
    assert 'job="tasks"' in text
    assert 'namespace="tm"' not in text


def test_the_burn_rate_alerts_read_recorded_ratios_not_long_raw_rates(
    groups: list[dict[str, Any]],
) -> None:
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert {
            f"task_manager:slo_errors:ratio_rate{window}",
            f"task_manager:slo_slow:ratio_rate{window}",
        } <= recorded
    every_expr = [r["expr"] for g in groups for r in g["rules"]]
    # The raw request series are only ever read over 5 minutes.
    for expr in every_expr:
        for window in re.findall(
            r"http_server_request_duration_seconds_\w+\{[^}]*\}\[(\w+)\]", expr
        ):
            assert window == "5m", expr
    for alert in alerts(groups):
        if alert["labels"].get("slo"):
            assert "http_server_request_duration_seconds" not in alert["expr"], alert["alert"]


def test_each_alert_can_be_turned_off_and_an_empty_group_is_left_out(rules_dir: Path) -> None:
    off = [
        "--set", "metrics.prometheusRule.alerts.TaskManagerLatencyBudgetBurnFast=false",
        "--set", "metrics.prometheusRule.alerts.TaskManagerCollectorDroppingSpans=false",
    ]  # fmt: skip
    groups = render_rule_groups(*off)
    names = {a["alert"] for a in alerts(groups)}
    assert "TaskManagerLatencyBudgetBurnFast" not in names
    assert "TaskManagerLatencyBudgetBurnSlow" in names
    assert "task-manager.trace-pipeline" not in {g["name"] for g in groups}
    (rules_dir / "off").mkdir()
    write_rules(rules_dir / "off", groups)
    promtool(rules_dir, "check", "rules", "off/rules.yaml")


def test_the_objectives_reach_the_rules(groups: list[dict[str, Any]]) -> None:
    custom = render_rule_groups(*RULE_TEST_VALUES["custom-slo.test.yaml"])
    text = yaml.safe_dump(custom)
    assert 'le="1.0"' in text
    assert 'le="0.5"' not in text
    assert "(1 - 99 / 100)" in text
    assert "(1 - 95 / 100)" in text
    assert "(1 - 99.9 / 100)" in yaml.safe_dump(groups)
