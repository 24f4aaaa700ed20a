#!/usr/bin/env bash
# Builds the observability tools (OTel Collector via ocb, Jaeger v2, Prometheus + promtool) into the version-keyed cache.
source "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "go is required to build the observability tools"

# Several checkouts on one machine share the cache: one build at a time, the others wait and then
# find the tools built (each step below skips what exists).
exec 9>"$TOOLS_CACHE/.observability.lock"
flock 9

# go_build_module NAME VERSION MODULE@VERSION PACKAGE [go build flags...]: builds PACKAGE inside a
# writable copy of MODULE's own source tree from the module cache, so the module's go.mod (with its
# replace directives, which `go install pkg@version` refuses) decides the dependency graph.
go_build_module() {
  local name=$1 version=$2 mod=$3 pkg=$4; shift 4
  local dir; dir=$(cached_tool "$name" "$version")
  if [[ ! -x "$dir/$name" ]]; then
    log "building $name $version from $mod"
    local src; src=$(go mod download -json "$mod" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    local tmp; tmp=$(mktemp -d)
    cp -r "$src/." "$tmp/"
    chmod -R u+w "$tmp"
    (cd "$tmp" && go build -trimpath "$@" -o "$dir/$name.tmp.$$" "$pkg")
    mv "$dir/$name.tmp.$$" "$dir/$name"
    rm -rf "$tmp"
  fi
  link_tool "$name" "$dir/$name"
}

# The collector: ocb at OTELCOL_VERSION, then the distribution from the committed manifest. The cache
# key includes the manifest's hash, so editing the component list rebuilds and nothing else does.
build_otelcol() {
  local manifest="$REPO_ROOT/ci/otelcol/builder-config.yaml"
  local v=${OTELCOL_VERSION#v} cv=${OTELCOL_CONTRIB_VERSION#v}
  # The manifest must follow the pins: every core component at OTELCOL_VERSION, contrib at its own.
  if grep -E '^\s*- gomod: go\.opentelemetry\.io/collector/(receiver|processor|exporter|extension)/' "$manifest" | grep -vq " v$v\$"; then
    die "ci/otelcol/builder-config.yaml: core components must be at OTELCOL_VERSION=$OTELCOL_VERSION"
  fi
  if grep -E '^\s*- gomod: github\.com/open-telemetry/opentelemetry-collector-contrib/' "$manifest" | grep -vq " v$cv\$"; then
    die "ci/otelcol/builder-config.yaml: contrib components must be at OTELCOL_CONTRIB_VERSION=$OTELCOL_CONTRIB_VERSION"
  fi
  go_install ocb "$OTELCOL_VERSION" "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_VERSION"
  local hash; hash=$(sha256sum "$manifest" | cut -c1-12)
  local dir; dir=$(cached_tool otelcol "$OTELCOL_VERSION-$hash")
  if [[ ! -x "$dir/otelcol" ]]; then
    log "building otelcol $OTELCOL_VERSION (manifest $hash) with ocb"
    local tmp; tmp=$(mktemp -d)
    cp "$manifest" "$tmp/builder-config.yaml"
    (cd "$tmp" && "$TOOLS_BIN/ocb" --config builder-config.yaml)
    mv "$tmp/build/otelcol-task-manager" "$dir/otelcol.tmp.$$"
    mv "$dir/otelcol.tmp.$$" "$dir/otelcol"
    rm -rf "$tmp"
  fi
  link_tool otelcol "$dir/otelcol"
}

build_otelcol
# Prometheus and promtool: no replace directives, so plain `go install`. remove_all_sd leaves only
# the file and http service discovery, and enable_kubernetes_sd brings back the one the Prometheus
# Operator's generated config uses in the local cluster (the cache key names the tags); the web UI
# assets are not embedded (the builtinassets tag is off), which leaves the HTTP API we use intact.
go_install prometheus "$PROMETHEUS_VERSION-sd-file-http-kubernetes" \
  "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" -tags "remove_all_sd enable_kubernetes_sd"
go_install promtool "$PROMETHEUS_VERSION" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" -tags remove_all_sd
# Jaeger v2: its go.mod carries replace lines, so build inside its own module tree. Without the `ui`
# tag the query service serves a placeholder page instead of the UI bundle; its HTTP API is complete.
go_build_module jaeger "$JAEGER_VERSION" "github.com/jaegertracing/jaeger@$JAEGER_VERSION" ./cmd/jaeger
