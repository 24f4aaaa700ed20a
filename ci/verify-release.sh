#!/usr/bin/env bash
# After a release: verifies both cosign signatures and installs the published chart from OCI, as the README tells users to.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
version=$(awk '$1 == "version:" { gsub(/["'\'']/, "", $2); print $2; exit }' Chart.yaml)
app_version=$(awk '$1 == "appVersion:" { gsub(/["'\'']/, "", $2); print $2; exit }' Chart.yaml)
identity='^https://github.com/task-manager/task-manager/\.github/workflows/release\.yml@refs/tags/v'

cosign verify "ghcr.io/task-manager/task-manager:$app_version" \
  --certificate-identity-regexp "$identity" \
  --certificate-oidc-issuer https://token.actions.githubusercontent.com >/dev/null
cosign verify "ghcr.io/task-manager/charts/task-manager:$version" \
  --certificate-identity-regexp "$identity" \
  --certificate-oidc-issuer https://token.actions.githubusercontent.com >/dev/null
log "signatures of the image and the chart verified"

helm install task-manager oci://ghcr.io/task-manager/charts/task-manager --version "$version" \
  --namespace task-manager --create-namespace --wait --timeout 5m
helm test task-manager --namespace task-manager --logs --timeout 5m
