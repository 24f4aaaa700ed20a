#!/usr/bin/env bash
# Passes variables to later steps of a GitHub Actions job: every pinned version of ci/versions.env, or NAME=<stdin> with an argument.
source "$(dirname "$0")/lib.sh"
[[ -n "${GITHUB_ENV:-}" ]] || die "GITHUB_ENV is not set: this script only runs inside a GitHub Actions job"
if (($# == 1)); then
  value=$(cat)
  [[ -n "$value" && "$value" != *$'\n'* ]] || die "$1: expected one non-empty line on stdin"
  printf '%s=%s\n' "$1" "$value" >>"$GITHUB_ENV"
  exit 0
fi
# NAME=value lines only; quotes around a value are dropped, as the shell would.
sed -nE 's/^([A-Z][A-Z0-9_]*)="?([^"]*)"?$/\1=\2/p' "$REPO_ROOT/ci/versions.env" >>"$GITHUB_ENV"
