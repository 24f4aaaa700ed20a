#!/usr/bin/env bash
# Service tests with a coverage report: build/coverage.xml (Cobertura) and build/coverage.md (summary).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
mkdir -p build
"$REPO_ROOT/ci/test-service.sh" --cov=task_manager --cov-branch \
  --cov-report=term-missing --cov-report=xml:build/coverage.xml "$@"
coverage report --format=markdown >build/coverage.md
