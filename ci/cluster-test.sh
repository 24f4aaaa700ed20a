#!/usr/bin/env bash
# Runs tests/cluster: on the local control plane (up, suite, always down) or, with USE_EXISTING_CLUSTER=1, on the current kube context.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

if [[ "${USE_EXISTING_CLUSTER:-}" == "1" ]]; then
  exec pytest tests/cluster -p no:cacheprovider "$@"
fi

# A throwaway cluster needs no fixed ports: take free ones (unless set), so that several checkouts
# on one machine can run the suite at once. `make cluster-up` keeps its documented defaults.
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

started=$SECONDS
trap 'ci/cluster-down.sh; log "cluster-test took $((SECONDS - started))s"' EXIT
ci/cluster-up.sh
KUBECONFIG="$REPO_ROOT/.cluster/kubeconfig" pytest tests/cluster -p no:cacheprovider "$@"
