#!/usr/bin/env bash
# Runs tests/cluster: on the local cluster (up, images, suite, always down, then the host checked to be as before) or, with USE_EXISTING_CLUSTER=1, on the current kube context.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

if [[ "${USE_EXISTING_CLUSTER:-}" == "1" ]]; then
  exec pytest tests/cluster -p no:cacheprovider "$@"
fi

# A throwaway control plane needs no fixed ports: take free ones (unless set), so that it does not
# collide with a `make up` cluster's defaults. (The node itself is one per machine.)
read -r -a free < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
export CLUSTER_ETCD_PORT=${CLUSTER_ETCD_PORT:-${free[0]}}
export CLUSTER_ETCD_PEER_PORT=${CLUSTER_ETCD_PEER_PORT:-${free[1]}}
export CLUSTER_APISERVER_PORT=${CLUSTER_APISERVER_PORT:-${free[2]}}
export CLUSTER_CONTROLLER_MANAGER_PORT=${CLUSTER_CONTROLLER_MANAGER_PORT:-${free[3]}}
export CLUSTER_SCHEDULER_PORT=${CLUSTER_SCHEDULER_PORT:-${free[4]}}

# Everything the run creates on the host must be gone afterwards, even when it fails.
mkdir -p build
ci/host-state.sh >build/host-before.txt
started=$SECONDS
finish() {
  local rc=$?
  ci/cluster-down.sh || rc=1
  ci/host-state.sh >build/host-after.txt
  if ! diff -u build/host-before.txt build/host-after.txt >&2; then
    log "FAILED: the host is not as it was before the cluster started (diff above)"
    rc=1
  fi
  log "cluster-test took $((SECONDS - started))s"
  exit "$rc"
}
trap finish EXIT
ci/cluster-up.sh
ci/node-images.sh
log "cluster and images ready after $((SECONDS - started))s"
KUBECONFIG="$REPO_ROOT/.cluster/kubeconfig" pytest tests/cluster -p no:cacheprovider "$@"
