#!/usr/bin/env bash
# Stops the local cluster started by ci/cluster-up.sh: the node first (ci/node-down.sh), then the control plane, and removes .cluster/.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/ci/cluster-lib.sh"

STATE="$REPO_ROOT/.cluster"
# The node is machine-wide: clean it up when it belongs to this checkout, or when whatever it
# belonged to is gone (a killed run); leave another checkout's running node alone.
# Whatever happens there, the control plane is stopped too; the exit status tells.
owner=$(cat "$NODE_RUN/owner" 2>/dev/null || true)
node_rc=0
if [[ -z "$owner" || "$owner" == "$STATE" ]] || ! running "$owner/pids" kube-apiserver; then
  KUBECONFIG="$STATE/kubeconfig" "$REPO_ROOT/ci/node-down.sh" || node_rc=$?
fi

[[ -d "$STATE" ]] || { log "no local control plane"; exit "$node_rc"; }
# Reverse start order; only a pid whose command line is still that program is signalled.
for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_process "$STATE/pids" "$name"
done
# The apiserver's INPUT guard (ci/cluster-up.sh), by the name it recorded.
chain=$(cat "$STATE/apiserver-chain" 2>/dev/null || true)
for cmd in iptables ip6tables; do
  [[ -n "$chain" ]] || break
  while "$cmd" -D INPUT -p tcp --dport "${chain#TM-APISERVER-}" -j "$chain" 2>/dev/null; do :; done
  "$cmd" -F "$chain" 2>/dev/null || true
  "$cmd" -X "$chain" 2>/dev/null || true
done
rm -rf "$STATE"
log "local cluster stopped and .cluster removed"
((node_rc == 0)) || die "the node's clean-up failed (exit $node_rc); see above"
