#!/usr/bin/env bash
# Image tier: builds the image on the local Debian-built base and runs it under the chart's securityContext.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

"$REPO_ROOT/ci/docker.sh"
"$REPO_ROOT/ci/build-image.sh"
# The exact image just built, by ID: the tag may be moved by another checkout on the same daemon.
TASK_MANAGER_IMAGE=$(<build/image.id) pytest tests/image "$@"
