#!/usr/bin/env bash
# Builds the monitoring components (prometheus-operator, prometheus-config-reloader, metrics-server) as static binaries into the version-keyed cache.
source "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "go is required to build the monitoring tools"

# The binaries go into FROM-scratch or Debian images: no cgo, so no libc to match.
export CGO_ENABLED=0

# Several checkouts on one machine share the cache: one build at a time, the others wait and then
# find the tools built (each step below skips what exists).
exec 9>"$TOOLS_CACHE/.monitoring.lock"
flock 9

# module_file MODULE@VERSION FIELD: downloads the module through the Go module proxy and prints one
# path from `go mod download -json` (Dir: its source tree; Info: the proxy's record of the tag, with
# its date). Runs from / so that no go.mod or go.sum around the caller is read or touched.
module_file() {
  local json path
  json=$(cd / && go mod download -json "$1") || true
  path=$(sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"$json")
  [[ -e "$path" ]] || die "could not download $1: $(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  printf '%s\n' "$path"
}

# metrics-server: no replace lines, so plain `go install`, stamped as its Makefile does: client-go's
# version package, which `--version` prints. component-base's is left alone on purpose: the
# apiserver library takes it as the Kubernetes binary version (emulation and compatibility floors),
# which v0.9.0 is not; unset, it falls back to the Kubernetes minor the library was released with.
ms_info=$(module_file "sigs.k8s.io/metrics-server@v${METRICS_SERVER_VERSION}" Info)
ms_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$ms_info")
go_install metrics-server "$METRICS_SERVER_VERSION" "sigs.k8s.io/metrics-server/cmd/metrics-server@v${METRICS_SERVER_VERSION}" \
  -ldflags "-w -X k8s.io/client-go/pkg/version.gitVersion=v${METRICS_SERVER_VERSION} -X k8s.io/client-go/pkg/version.buildDate=$ms_date"
[[ "$(metrics-server --version)" == "v${METRICS_SERVER_VERSION}" ]] \
  || die "metrics-server --version does not print v${METRICS_SERVER_VERSION}"

# Prometheus Operator and its config reloader, at the release the chart's CRDs come from. The root
# module's go.mod replaces pkg/apis/monitoring and pkg/client with ./pkg/..., but those are modules
# of their own and not in the root module's zip, so `go install` refuses it: assemble the release
# tree from the three modules and build there, with the version stamping of the project's Makefile.
build_prometheus_operator() {
  local v=$PROMETHEUS_OPERATOR_VERSION mod=github.com/prometheus-operator/prometheus-operator
  local op_dir rl_dir
  op_dir=$(cached_tool prometheus-operator "$v")
  rl_dir=$(cached_tool prometheus-config-reloader "$v")
  local op="$op_dir/prometheus-operator" rl="$rl_dir/prometheus-config-reloader"
  if [[ ! -x "$op" || ! -x "$rl" ]]; then
    log "building prometheus-operator and prometheus-config-reloader $v from $mod"
    local root apis client info
    root=$(module_file "$mod@v$v" Dir)
    apis=$(module_file "$mod/pkg/apis/monitoring@v$v" Dir)
    client=$(module_file "$mod/pkg/client@v$v" Dir)
    info=$(module_file "$mod@v$v" Info)
    # The module zip carries no .git: revision, tag and date come from the proxy's record.
    local rev ref date pkg=github.com/prometheus/common/version
    rev=$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info")
    ref=$(sed -n 's/.*"Ref":"\([^"]*\)".*/\1/p' "$info")
    date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
    local ldflags="-s -X $pkg.Version=$v -X $pkg.Revision=$rev -X $pkg.Branch=${ref:-v$v} -X $pkg.BuildUser=task-manager-ci -X $pkg.BuildDate=$date"
    # The release tree: the root module, with the two submodules where its replace lines point.
    work=$(mktemp -d)
    trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
    cp -R "$root/." "$work/"
    mkdir -p "$work/pkg/apis/monitoring" "$work/pkg/client"
    cp -R "$apis/." "$work/pkg/apis/monitoring/"
    cp -R "$client/." "$work/pkg/client/"
    chmod -R u+w "$work"
    (cd "$work" && go build -trimpath -ldflags "$ldflags" -o out/prometheus-operator ./cmd/operator \
      && go build -trimpath -ldflags "$ldflags" -o out/prometheus-config-reloader ./cmd/prometheus-config-reloader)
    local bin
    for bin in prometheus-operator prometheus-config-reloader; do
      [[ "$("$work/out/$bin" --version 2>&1)" == *"version $v "* ]] || die "$bin --version does not report $v"
    done
    # Copy next to the final name first (the cache may be on another filesystem), then rename.
    cp "$work/out/prometheus-operator" "$op.tmp" && mv "$op.tmp" "$op"
    cp "$work/out/prometheus-config-reloader" "$rl.tmp" && mv "$rl.tmp" "$rl"
  fi
  link_tool prometheus-operator "$op"
  link_tool prometheus-config-reloader "$rl"
}

build_prometheus_operator
