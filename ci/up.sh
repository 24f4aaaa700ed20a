#!/usr/bin/env bash
# `make up`: the local cluster with a real node, the images imported, the chart installed with values-dev.yaml and `helm test` passed; prints how to reach the API, traces and metrics.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/ci/cluster-lib.sh"
cd "$REPO_ROOT"
# Idempotent: a second run finds the cluster up and the release deployed from the same chart,
# values and image, and changes nothing. Local ports of the printed port-forwards can be moved with
# UP_API_PORT, UP_METRICS_PORT and UP_JAEGER_PORT.

RELEASE=${UP_RELEASE:-tm}
NAMESPACE=${UP_NAMESPACE:-task-manager}
API_PORT=${UP_API_PORT:-8080}
METRICS_PORT=${UP_METRICS_PORT:-9464}
JAEGER_PORT=${UP_JAEGER_PORT:-16686}
export KUBECONFIG="$REPO_ROOT/.cluster/kubeconfig"

ci/cluster-up.sh
ci/node-images.sh app otel-collector jaeger  # what values-dev.yaml runs (pause comes with the node)

# What the release is made of: the chart's files and the app image. Unchanged: nothing to do.
chart_files=(Chart.yaml Chart.lock values.yaml values.schema.json values-dev.yaml templates charts grafana-dashboards)
inputs=$( { git ls-files -s -- "${chart_files[@]}"; git diff HEAD -- "${chart_files[@]}"; cat build/image.id; } \
  | sha256sum | cut -c1-16)
deployed=$(kubectl -n "$NAMESPACE" get secret -l "owner=helm,name=$RELEASE,status=deployed" \
  -o jsonpath='{.items[0].metadata.labels.version}' 2>/dev/null || true)
stamp="$REPO_ROOT/.cluster/up.$RELEASE.inputs"
if [[ -n "$deployed" && -f "$stamp" && $(<"$stamp") == "$inputs" ]]; then
  log "release $RELEASE (revision $deployed) is up to date"
  kubectl -n "$NAMESPACE" rollout status deployment --timeout=2m >/dev/null
else
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  log "installing the chart as release $RELEASE with values-dev.yaml"
  helm upgrade --install "$RELEASE" . --namespace "$NAMESPACE" -f values-dev.yaml \
    --wait --wait-for-jobs --timeout 5m >/dev/null
  log "helm test $RELEASE"
  helm test "$RELEASE" --namespace "$NAMESPACE" --timeout 5m >/dev/null \
    || { helm test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 1m >&2 || true; die "helm test failed"; }
  printf '%s\n' "$inputs" >"$stamp"
fi

# The chart's fullname rule (templates/_helpers.tpl); its Secret has the same name.
fullname="$RELEASE-task-manager"
[[ $RELEASE != *task-manager* ]] || fullname=$RELEASE
cat <<TEXT

The chart runs on a real local node (release $RELEASE, namespace $NAMESPACE, values-dev.yaml).
Use the cluster in this shell:
  export KUBECONFIG=$KUBECONFIG PATH=$TOOLS_BIN:\$PATH
The API (each port-forward in its own terminal, or end it with &):
  kubectl -n $NAMESPACE port-forward svc/$fullname $API_PORT:8080
  export TOKEN=\$(kubectl -n $NAMESPACE get secret $fullname -o jsonpath='{.data.tokens}' | base64 -d | head -n1 | cut -d: -f2-)
  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$API_PORT/api/v1/tasks
Traces in Jaeger, through its query API (this locally built Jaeger has no web UI):
  kubectl -n $NAMESPACE port-forward svc/$RELEASE-jaeger $JAEGER_PORT:16686
  curl 'http://127.0.0.1:$JAEGER_PORT/api/traces?service=task-manager&limit=5'
Metrics:
  kubectl -n $NAMESPACE port-forward svc/$fullname $METRICS_PORT:9464
  curl http://127.0.0.1:$METRICS_PORT/metrics
Stop everything: make down
TEXT
