#!/usr/bin/env bash
# Release: packages the chart, pushes it to the OCI registry, signs it with cosign (keyless) and pushes Artifact Hub metadata.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
registry="${CHART_REGISTRY:-oci://ghcr.io/task-manager/charts}"

version=$(awk '$1 == "version:" { gsub(/["'\'']/, "", $2); print $2; exit }' Chart.yaml)
name=$(awk '$1 == "name:" { print $2; exit }' Chart.yaml)
# A tag releases exactly the chart version it names.
if [[ -n "${GITHUB_REF_NAME:-}" && "$GITHUB_REF_NAME" != "v$version" ]]; then
  die "tag $GITHUB_REF_NAME does not match Chart.yaml version $version: bump the chart or retag"
fi

# helm keeps its own registry credentials; cosign and oras read the docker login of the job.
if [[ -n "${REGISTRY_TOKEN:-}" ]]; then
  host=${registry#oci://}
  printf '%s' "$REGISTRY_TOKEN" | helm registry login "${host%%/*}" \
    --username "${REGISTRY_USER:?REGISTRY_USER is required with REGISTRY_TOKEN}" --password-stdin
fi

mkdir -p build/release
ci/package-chart.sh build/release
helm push "build/release/$name-$version.tgz" "$registry" | tee build/release/push.txt
digest=$(sed -n 's/^Digest: //p' build/release/push.txt)
[[ -n "$digest" ]] || die "helm push printed no digest"
ref="${registry#oci://}/$name"

# Keyless signing: the GitHub OIDC token (id-token: write) identifies this workflow to Fulcio.
cosign sign --yes "$ref@$digest"

# Artifact Hub reads repository metadata from the special tag artifacthub.io in the same repository.
go_install oras "$ORAS_VERSION" "oras.land/oras/cmd/oras@$ORAS_VERSION"
oras push "$ref:artifacthub.io" \
  --config /dev/null:application/vnd.cncf.artifacthub.config.v1+yaml \
  ci/artifacthub-repo.yml:application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml
log "released $ref:$version ($digest), signed, with Artifact Hub metadata"
