#!/usr/bin/env bash
# Generates the CRDs the chart uses (Prometheus Operator, Gateway API HTTPRoute) into .tools/crds/.
source "$(dirname "$0")/lib.sh"
# Output: one file per CRD, linked flat into .tools/crds/ (stable names, e.g.
# monitoring.coreos.com_servicemonitors.yaml, gateway.networking.k8s.io_httproutes.yaml); the
# files themselves live in the version-keyed tool cache, so a second run regenerates nothing.

go_install controller-gen "$CONTROLLER_TOOLS_VERSION" \
  "sigs.k8s.io/controller-tools/cmd/controller-gen@v${CONTROLLER_TOOLS_VERSION}"

# module_dir MODULE@VERSION: downloads the module through the Go module proxy, prints its source dir.
module_dir() {
  local json dir
  json=$(go mod download -json "$1" || true)
  dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")
  [[ -n "$dir" ]] || die "could not download $1: $(sed -n 's/^\t"Error": "\(.*\)",$/\1/p' <<<"$json")"
  printf '%s\n' "$dir"
}

# Prometheus Operator: the monitoring.coreos.com types are a standalone Go module; controller-gen
# reads their kubebuilder markers, as the operator's own build does.
prom=$(cached_tool crds-prometheus-operator "${PROMETHEUS_OPERATOR_VERSION}-controller-gen-${CONTROLLER_TOOLS_VERSION}")
if [[ ! -s "$prom/monitoring.coreos.com_servicemonitors.yaml" || ! -s "$prom/monitoring.coreos.com_prometheusrules.yaml" ]]; then
  log "generating Prometheus Operator v${PROMETHEUS_OPERATOR_VERSION} CRDs with controller-gen v${CONTROLLER_TOOLS_VERSION}"
  src=$(module_dir "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@v${PROMETHEUS_OPERATOR_VERSION}")
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -R "$src/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && GOFLAGS=-mod=mod controller-gen crd:crdVersions=v1 paths=./v1/... output:crd:dir="$work/out")
  cp "$work/out/"*.yaml "$prom/"
fi

# Gateway API: the module ships its CRDs as YAML under config/crd; take HTTPRoute (standard channel).
gw=$(cached_tool crds-gateway-api "$GATEWAY_API_VERSION")
if [[ ! -s "$gw/gateway.networking.k8s.io_httproutes.yaml" ]]; then
  log "taking the Gateway API v${GATEWAY_API_VERSION} HTTPRoute CRD from its module"
  src=$(module_dir "sigs.k8s.io/gateway-api@v${GATEWAY_API_VERSION}")
  cp "$src/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$gw/.httproutes.yaml"
  chmod u+w "$gw/.httproutes.yaml" && mv "$gw/.httproutes.yaml" "$gw/gateway.networking.k8s.io_httproutes.yaml"
fi

out="$REPO_ROOT/.tools/crds"
mkdir -p "$out"
find "$out" -maxdepth 1 -type l -name '*.yaml' -delete
for f in "$prom"/*.yaml "$gw"/*.yaml; do ln -sfn "$f" "$out/$(basename "$f")"; done
log "CRDs in ${out#"$REPO_ROOT"/}"
