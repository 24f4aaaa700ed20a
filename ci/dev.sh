#!/usr/bin/env bash
# Local stack from the rendered chart: app on SQLite, collector, Jaeger, Prometheus; prints the URLs, Ctrl-C stops all.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
# Only the tools the stack runs (helm renders the chart), not every tool `make tools` builds: cached,
# so a second run builds nothing.
"$REPO_ROOT/ci/tools-chart.sh"
"$REPO_ROOT/ci/tools-observability.sh"
# The import path pytest gives tests/e2e: tests/ (pyproject's pythonpath) for `support`, and the
# script's own directory for `stack`.
export PYTHONPATH="$REPO_ROOT/tests${PYTHONPATH:+:$PYTHONPATH}"
exec python tests/e2e/dev.py
