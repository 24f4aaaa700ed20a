#!/usr/bin/env bash
# Service tier: unit and integration tests of service/.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
pytest tests/service "$@"
