#!/usr/bin/env bash
# Prints what a local cluster run may change on this host (links, routes, iptables rules, sysctls, mounts, cgroups, netns, processes), normalised so two snapshots can be diffed.
source "$(dirname "$0")/lib.sh"
# ci/cluster-test.sh takes one before the cluster starts and one after it is down; they must match.
# Docker's own mounts are left out: the image builds of the same run come and go with the engine.

section() { printf '## %s\n' "$1"; }
section links; ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort
section routes; ip route show table all | sort
for cmd in iptables-save ip6tables-save; do
  section "$cmd"
  if command -v "$cmd" >/dev/null; then
    # Rules and user chains; counters and the built-in chains of (possibly empty) tables are noise.
    "$cmd" 2>/dev/null | { grep -E '^(-A|:)' || true; } | sed -E 's/ \[[0-9]+:[0-9]+\]$//' \
      | { grep -vE '^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ' || true; } | sort
  fi
done
section sysctls
sysctl net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory \
  net.bridge.bridge-nf-call-iptables 2>/dev/null
section mounts; findmnt -rn -o TARGET | { grep -vE '^(/var/lib/docker|/run/docker|/var/run/docker)(/|$)' || true; } | sort
section cgroups; find /sys/fs/cgroup -maxdepth 2 -name kubepods 2>/dev/null | sort
section netns; lsns -t net -n -o NS 2>/dev/null | sort -u | wc -l
section files
for path in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd/runc/k8s.io; do
  [[ ! -e "$path" ]] || find "$path" | sort
done
section processes # the cluster's own, started from the tool cache
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$exe" in
    "$TOOLS_CACHE"/*/kube-* | "$TOOLS_CACHE"/*/kubelet | "$TOOLS_CACHE"/*/etcd | "$TOOLS_CACHE"/*/coredns \
      | "$TOOLS_CACHE"/*/containerd*) basename "$exe" ;;
  esac
done | sort
