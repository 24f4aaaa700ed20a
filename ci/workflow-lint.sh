#!/usr/bin/env bash
# Lints the GitHub workflows with the pinned actionlint (shellcheck checks their run: scripts).
source "$(dirname "$0")/lib.sh"
"$REPO_ROOT/ci/tools-ci.sh"
cd "$REPO_ROOT"
actionlint -no-color "$@"
