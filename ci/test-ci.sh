#!/usr/bin/env bash
# CI contract tier: the workflows are pinned and thin, and every README command is exercised (tests/ci).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
pytest tests/ci "$@"
