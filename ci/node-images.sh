#!/usr/bin/env bash
# Builds the images the real node runs and imports them into its containerd (never pulled): pause, app, otel-collector, jaeger (default: all).
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/ci/cluster-lib.sh"
# Each image is imported under the reference the chart uses by default, so values-dev.yaml installs
# unchanged with imagePullPolicy IfNotPresent:
#   app             ghcr.io/task-manager/task-manager:<appVersion>, the project's Dockerfile
#                   (ci/build-image.sh, on the Debian-built base)
#   otel-collector  docker.io/otel/opentelemetry-collector:<its appVersion>, the collector built by
#                   ci/tools-observability.sh from ci/otelcol/builder-config.yaml
#   jaeger          docker.io/jaegertracing/jaeger:<its appVersion>, Jaeger v2 built from its module
#   pause           the sandbox image, from the pinned Kubernetes release's build/pause
# and, for the kube-prometheus-stack tests (tests/cluster/monitoring), under
# localhost/task-manager-node/NAME:VERSION: metrics-server, prometheus-operator,
# prometheus-config-reloader (ci/tools-monitoring.sh) and prometheus (ci/tools-observability.sh).
# The collector and Jaeger are local builds of the same versions, not the upstream images: they run
# the same configs (tests/e2e proves that) but Jaeger has no web UI (docs/local-cluster.md).

[[ -S "$CONTAINERD_SOCKET" ]] || die "the node's containerd is not running (make cluster-up)"
"$REPO_ROOT/ci/docker.sh"
mkdir -p "$NODE_STATE/images"

chart_app_version() { awk '$1 == "appVersion:" { gsub(/["'\'']/, "", $2); print $2; exit }' "$1/Chart.yaml"; }

# tool_image REF BINARY BASE USER PATH: an image of BASE with BINARY at PATH (where the upstream
# image has it: operators and charts run some of these by path) as its entrypoint, built again only
# when the binary or the path changed (both are in a label of the image).
tool_image() {
  local ref=$1 bin=$2 base=$3 user=$4 path=$5 stamp ctx
  stamp="$(sha256sum "$(readlink -f "$bin")" | cut -c1-64)@$path"
  if [[ $(docker image inspect --format '{{ index .Config.Labels "task-manager.binary" }}' "$ref" 2>/dev/null) == "$stamp" ]]; then
    return 0
  fi
  log "building $ref from $(basename "$bin")"
  ctx=$(mktemp -d)
  install -m 0755 "$(readlink -f "$bin")" "$ctx/binary"
  if ! docker build --quiet --network none -t "$ref" -f - "$ctx" >/dev/null 2>"$ctx.log" <<DOCKERFILE
FROM $base
COPY binary $path
LABEL task-manager.binary=$stamp
USER $user
ENTRYPOINT ["$path"]
DOCKERFILE
  then
    cat "$ctx.log" >&2
    die "docker build of $ref failed"
  fi
  rm -rf "$ctx" "$ctx.log"
}

# import REF: docker save | ctr import, skipped when this exact image is already in the node;
# pinned, so neither the kubelet's image GC nor containerd's ever removes it.
import() {
  local ref=$1 id stamp
  id=$(docker image inspect --format '{{.Id}}' "$ref")
  stamp="$NODE_STATE/images/$(printf '%s' "$ref" | tr '/:@' '___')"
  [[ -f "$stamp" && $(<"$stamp") == "$id" ]] && return 0
  log "importing $ref into the node"
  # (ctr warns on every call that cgroup v1 is deprecated; that line is the host's, not news.)
  docker save "$ref" | node_ctr images import --platform linux/amd64 - 2> >(grep -v 'support for cgroup v1 is deprecated' >&2) >/dev/null
  node_ctr images label "$ref" io.cri-containerd.pinned=pinned 2> >(grep -v 'support for cgroup v1 is deprecated' >&2) >/dev/null
  printf '%s\n' "$id" >"$stamp"
}

images=("$@")
((${#images[@]})) || images=(pause app otel-collector jaeger metrics-server prometheus-operator \
  prometheus-config-reloader prometheus)
for image in "${images[@]}"; do
  case "$image" in
    pause)
      ref="localhost/task-manager-node/pause:v$KUBERNETES_VERSION"
      tool_image "$ref" "$TOOLS_BIN/pause" scratch 65535:65535 /pause ;;
    app)
      "$REPO_ROOT/ci/build-image.sh" >&2
      ref="ghcr.io/task-manager/task-manager:$(chart_app_version "$REPO_ROOT")"
      docker tag "$(<"$REPO_ROOT/build/image.id")" "$ref" ;;
    otel-collector)
      ref="docker.io/otel/opentelemetry-collector:$(chart_app_version "$REPO_ROOT/charts/otel-collector")"
      tool_image "$ref" "$TOOLS_BIN/otelcol" "$("$REPO_ROOT/ci/base-image.sh")" 10001:10001 /otelcol ;;
    jaeger)
      ref="docker.io/jaegertracing/jaeger:$(chart_app_version "$REPO_ROOT/charts/jaeger")"
      tool_image "$ref" "$TOOLS_BIN/jaeger" "$("$REPO_ROOT/ci/base-image.sh")" 10001:10001 /cmd/jaeger/jaeger-linux ;;
    metrics-server)
      ref="localhost/task-manager-node/metrics-server:v$METRICS_SERVER_VERSION"
      tool_image "$ref" "$TOOLS_BIN/metrics-server" scratch 65534:65534 /metrics-server ;;
    prometheus-operator)
      ref="localhost/task-manager-node/$image:v$PROMETHEUS_OPERATOR_VERSION"
      tool_image "$ref" "$TOOLS_BIN/$image" scratch 65534:65534 /bin/operator ;;
    prometheus-config-reloader)
      ref="localhost/task-manager-node/$image:v$PROMETHEUS_OPERATOR_VERSION"
      tool_image "$ref" "$TOOLS_BIN/$image" scratch 65534:65534 /bin/prometheus-config-reloader ;;
    prometheus)
      ref="localhost/task-manager-node/prometheus:$(prometheus_release)"
      tool_image "$ref" "$TOOLS_BIN/prometheus" "$("$REPO_ROOT/ci/base-image.sh")" 65534:65534 /bin/prometheus ;;
    *) die "unknown image '$image' (pause, app, otel-collector, jaeger, metrics-server, prometheus-operator, prometheus-config-reloader or prometheus)" ;;
  esac
  import "$ref"
done
