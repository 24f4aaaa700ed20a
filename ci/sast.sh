#!/usr/bin/env bash
# SAST: bandit over service/ with the pyproject config; fails on any medium or high severity finding.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
bandit --configfile pyproject.toml --recursive service/ --severity-level medium --quiet "$@"
