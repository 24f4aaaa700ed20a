#!/usr/bin/env bash
# Exports every pinned version in ci/versions.env to later steps of a GitHub Actions job ($GITHUB_ENV).
source "$(dirname "$0")/lib.sh"
[[ -n "${GITHUB_ENV:-}" ]] || die "GITHUB_ENV is not set: this script only runs inside a GitHub Actions job"
# NAME=value lines only; quotes around a value are dropped, as the shell would.
sed -nE 's/^([A-Z][A-Z0-9_]*)="?([^"]*)"?$/\1=\2/p' "$REPO_ROOT/ci/versions.env" >>"$GITHUB_ENV"
