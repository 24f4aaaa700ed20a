#!/usr/bin/env bash
# Builds every pinned tool by running each ci/tools-*.sh in turn.
source "$(dirname "$0")/lib.sh"
shopt -s nullglob
for script in "$REPO_ROOT"/ci/tools-*.sh; do
  "$script"
done
