#!/usr/bin/env bash
# Fault report: every fault of the fault suite against the real service; writes docs/faults.md and its pictures.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
TASK_MANAGER_TEST_PG_BINDIR=$("$REPO_ROOT/ci/postgres.sh")
export TASK_MANAGER_TEST_PG_BINDIR
python bench/faults.py "$@"
