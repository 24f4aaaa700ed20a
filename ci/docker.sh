#!/usr/bin/env bash
# Makes a Docker engine answer: installs Debian's docker.io if missing and starts dockerd if none runs.
source "$(dirname "$0")/lib.sh"

# The daemon outlives any one checkout, so its log lives in the per-user cache, not the work tree.
DOCKERD_LOG="${DOCKERD_LOG:-${XDG_CACHE_HOME:-$HOME/.cache}/task-manager/dockerd.log}"

if docker info >/dev/null 2>&1; then
  exit 0
fi

apt_install docker.io
command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"

# Containers here use host networking only (no registry, traffic stays on loopback), so the daemon
# gets no bridge, never touches the host's iptables and leaves IP forwarding as it is. It runs with
# the system PATH: .tools/bin holds the node's containerd 2.x, which is not the one Docker expects.
mkdir -p "$(dirname "$DOCKERD_LOG")"
# A daemon killed without cleanup (a machine handed back, a CI run's end) leaves its pid file; if no
# dockerd runs, it is stale, and a reused PID in it would stop the new daemon from starting.
pgrep -x dockerd >/dev/null || rm -f /var/run/docker.pid
log "starting dockerd (log: $DOCKERD_LOG)"
setsid nohup env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
  >>"$DOCKERD_LOG" 2>&1 </dev/null &

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker engine $(docker version --format '{{.Server.Version}}') is up"
    exit 0
  fi
  sleep 1
done
tail -n 30 "$DOCKERD_LOG" >&2 || true
die "dockerd did not answer within 60s"
