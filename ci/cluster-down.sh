#!/usr/bin/env bash
# Stops the local control plane started by ci/cluster-up.sh and removes its state (.cluster/).
source "$(dirname "$0")/lib.sh"

STATE="$REPO_ROOT/.cluster"
[[ -d "$STATE" ]] || { log "no local cluster"; exit 0; }

# Stop in reverse start order; only a pid whose command line is still that program is signalled.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pid=$(cat "$STATE/pids/$name.pid" 2>/dev/null) || continue
  if ! { [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"; }; then
    continue
  fi
  log "stopping $name ($pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do [[ -d /proc/$pid ]] || break; sleep 0.2; done
  if [[ -d /proc/$pid ]]; then kill -9 "$pid" 2>/dev/null || true; fi
done
rm -rf "$STATE"
log "local cluster stopped and .cluster removed"
