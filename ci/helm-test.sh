#!/usr/bin/env bash
# Installs the chart with values-dev.yaml into the current kube context and runs `helm test` (real test pods).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
release="${RELEASE:-tm-helm-test}"
namespace="${NAMESPACE:-helm-test}"
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$namespace" --overwrite pod-security.kubernetes.io/enforce=restricted
trap 'helm uninstall "$release" --namespace "$namespace" --wait >/dev/null 2>&1 || true' EXIT
helm install "$release" . --namespace "$namespace" --create-namespace -f values-dev.yaml \
  --wait --wait-for-jobs --timeout 5m
helm test "$release" --namespace "$namespace" --logs --timeout 5m
