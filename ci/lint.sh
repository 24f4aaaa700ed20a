#!/usr/bin/env bash
# Static checks: ruff (lint + format) and mypy strict on service/, shellcheck over ci/*.sh and .ci/run.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ruff check .
ruff format --check .
mypy
# Every shell script CI runs, following what each one sources.
apt_install shellcheck
shellcheck --source-path=SCRIPTDIR -x ci/*.sh .ci/run
