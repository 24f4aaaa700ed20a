#!/usr/bin/env bash
# Generates strict Kubernetes JSON schemas per version in KUBE_SCHEMA_VERSIONS (cached by version).
source "$(dirname "$0")/lib.sh"

# The OpenAPI spec ships inside the k8s.io/kubernetes module (api/openapi-spec/swagger.json), so
# the Go module proxy is the only source; nothing is fetched from anywhere else.
for version in $KUBE_SCHEMA_VERSIONS; do
  dir=$(cached_tool k8s-schemas "$version")
  out="$dir/$version-standalone-strict"
  if [[ ! -f "$out/deployment-apps-v1.json" ]]; then
    log "generating Kubernetes $version JSON schemas"
    src=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -f "$src/api/openapi-spec/swagger.json" ]] || die "no api/openapi-spec/swagger.json in k8s.io/kubernetes@$version"
    rm -rf "$out.tmp"
    python3 "$REPO_ROOT/ci/openapi2jsonschema.py" "$src/api/openapi-spec/swagger.json" "$out.tmp" >/dev/null
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  mkdir -p "$REPO_ROOT/.tools/schemas"
  ln -sfn "$out" "$REPO_ROOT/.tools/schemas/$version-standalone-strict"
done
