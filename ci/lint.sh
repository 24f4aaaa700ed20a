#!/usr/bin/env bash
# Static checks of the Python code: ruff (lint + format) and mypy strict on service/.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ruff check .
ruff format --check .
mypy
