#!/usr/bin/env bash
# End-to-end tier: real Jaeger, collector, app and Prometheus from the rendered chart (tests/e2e).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
for tool in helm otelcol jaeger prometheus; do command -v "$tool" >/dev/null || die "$tool missing: run make tools"; done
pytest tests/e2e "$@"
