#!/usr/bin/env bash
# Stops the real node and undoes every host change ci/node-up.sh made (processes, containers, mounts, iptables, bridge, cgroups, sysctls); safe to run at any time, any number of times.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/ci/cluster-lib.sh"
# Works from what is on the host, not from what the last run remembered, so it also cleans up
# after a run that was killed half-way. With KUBECONFIG pointing at a live apiserver it first lets
# the kubelet stop the pods itself (volumes unmounted, networks torn down by CNI).

if [[ ! -e "$NODE_RUN" && ! -e "$NODE_STATE" ]] && ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
  exit 0
fi
((EUID == 0)) || die "cleaning up the real node needs root"
pids="$NODE_RUN/pids"
log "stopping node $NODE_NAME"

# 1. Pods, while the kubelet still runs: cordon so nothing is scheduled again, delete them all with
#    a short grace period, and wait (bounded) until containerd runs no more tasks.
if [[ -n "${KUBECONFIG:-}" ]] && running "$pids" kubelet && kubectl get --raw=/readyz >/dev/null 2>&1; then
  kubectl cordon "$NODE_NAME" >/dev/null 2>&1 || true
  kubectl delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    [[ -z "$(node_ctr tasks ls -q 2>/dev/null)" ]] && break
    sleep 1
  done
fi

# 2. The node's own processes, kube-proxy's rules with it.
stop_process "$pids" coredns
stop_process "$pids" kube-proxy
if [[ -x "$TOOLS_BIN/kube-proxy" ]]; then "$TOOLS_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
stop_process "$pids" kubelet 20

# 3. Whatever still runs in a container: killed through containerd, then by cgroup.
if running "$pids" containerd; then
  for id in $(node_ctr tasks ls -q 2>/dev/null); do
    node_ctr tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 1
  for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(node_ctr containers ls -q 2>/dev/null); do node_ctr containers delete "$id" >/dev/null 2>&1 || true; done
fi
kill_cgroup_tree() { # kills every process in the kubepods cgroups of every v1 hierarchy
  local procs
  mapfile -t procs < <(find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
  ((${#procs[@]} == 0)) || kill -9 "${procs[@]}" 2>/dev/null || true
}
kill_cgroup_tree
stop_process "$pids" containerd 15
# The shims outlive containerd by design; stop the ones of this node's containerd.
shim=$(readlink -f "$TOOLS_BIN/containerd-shim-runc-v2" 2>/dev/null || true)
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  if [[ -n "$shim" && "$exe" == "$shim" ]] && tr '\0' ' ' <"$p/cmdline" | grep -q -- "$NODE_RUN"; then
    kill -9 "${p#/proc/}" 2>/dev/null || true
  fi
done
kill_cgroup_tree

# 4. iptables: the node's own rule, the kubelet's chains (v4 and v6), CNI's portmap chains.
while iptables -t mangle -S FORWARD 2>/dev/null | grep -q -- "--comment \"\?$NODE_RULE_COMMENT"; do
  rule=$(iptables -t mangle -S FORWARD | grep -m1 -- "--comment \"\?$NODE_RULE_COMMENT" | sed 's/^-A /-D /')
  eval "iptables -t mangle $rule" || break
done
for cmd in iptables ip6tables; do
  command -v "$cmd" >/dev/null || continue
  for table in filter nat mangle; do
    for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT|PROXY-CANARY)|CNI-)/ { print $2 }'); do
      # Every rule that jumps to the chain, then the chain itself.
      "$cmd" -t "$table" -S 2>/dev/null | { grep -E -- "-j $chain( |\$)" || true; } | sed 's/^-A /-D /' | while read -r rule; do
        eval "$cmd -t $table $rule" 2>/dev/null || true
      done
      "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
done

# 5. Mounts under the node's directories (deepest first), the bridge and its route.
findmnt -rn -o TARGET 2>/dev/null | { grep -E "^($NODE_STATE|$NODE_RUN)(/|\$)" || true; } | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
done
ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
ip link del "$NODE_BRIDGE" 2>/dev/null || true

# 6. cgroups the kubelet made, what it linked into /var/log/containers, CNI's result cache.
for root in /sys/fs/cgroup/*/kubepods; do
  if [[ -d "$root" ]]; then find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done
find /var/log/containers -maxdepth 1 -type l -lname "$NODE_STATE/*" -delete 2>/dev/null || true
rm -f /var/lib/cni/results/task-manager-* /var/lib/kubelet/device-plugins/kubelet.sock 2>/dev/null || true
if [[ -f "$NODE_RUN/created-paths" ]]; then
  while IFS= read -r path; do rm -rf "$path"; done <"$NODE_RUN/created-paths"
fi

# 7. Sysctls back to what they were before the node started.
if [[ -f "$NODE_RUN/sysctl.saved" ]]; then
  while IFS= read -r setting; do sysctl -qw "$setting" || true; done <"$NODE_RUN/sysctl.saved"
fi

rm -rf "$NODE_RUN" "$NODE_STATE"
left=(/sys/fs/cgroup/*/kubepods)
[[ ! -e "${left[0]}" ]] || die "kubepods cgroups could not be removed: ${left[*]}"
log "node $NODE_NAME stopped; host restored"
