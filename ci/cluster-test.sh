#!/usr/bin/env bash
# Runs tests/cluster: on the local control plane (up, suite, always down) or, with USE_EXISTING_CLUSTER=1, on the current kube context.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

if [[ "${USE_EXISTING_CLUSTER:-}" == "1" ]]; then
  exec pytest tests/cluster -p no:cacheprovider "$@"
fi

started=$SECONDS
trap 'ci/cluster-down.sh; log "cluster-test took $((SECONDS - started))s"' EXIT
ci/cluster-up.sh
KUBECONFIG="$REPO_ROOT/.cluster/kubeconfig" pytest tests/cluster -p no:cacheprovider "$@"
