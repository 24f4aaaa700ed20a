#!/usr/bin/env bash
# Service tier: unit and integration tests of service/, against SQLite and a real PostgreSQL.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
TASK_MANAGER_TEST_PG_BINDIR=$("$REPO_ROOT/ci/postgres.sh")
export TASK_MANAGER_TEST_PG_BINDIR
pytest tests/service "$@"
