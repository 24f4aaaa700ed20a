#!/usr/bin/env bash
# Loads the image built by ci/build-image.sh into a kind cluster under the name the chart pulls by default.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
cluster="${KIND_CLUSTER_NAME:-task-manager}"
[[ -s build/image.ref ]] || die "build/image.ref is missing: run ci/build-image.sh first"
local_ref=$(<build/image.ref)
# Same tag under the published repository, so the chart's default image values resolve to it and
# kind's node never pulls (imagePullPolicy IfNotPresent finds the loaded image).
published="ghcr.io/task-manager/task-manager:${local_ref##*:}"
docker tag "$local_ref" "$published"
kind load docker-image --name "$cluster" "$published"
log "loaded $published into kind cluster $cluster"
