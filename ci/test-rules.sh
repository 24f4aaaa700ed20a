#!/usr/bin/env bash
# Dashboards and alert rules: dashboard structure tests, promtool check/test of the rendered PrometheusRule.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
for tool in helm promtool; do command -v "$tool" >/dev/null || die "$tool missing: run make tools"; done
pytest tests/chart/test_dashboards.py tests/chart/test_prometheus_rules.py "$@"
