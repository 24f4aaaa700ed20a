# Helpers shared by the local cluster's scripts (control plane and node): processes by pid file,
# waiting, certificates from the cluster CA. Source after lib.sh, don't run.
# shellcheck shell=bash
# shellcheck disable=SC2034  # constants and helpers for the scripts that source this file

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds or the time is up.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what not ready after ${seconds}s; see ${LOG_DIR:-the logs}"
    sleep 0.5
  done
}

# running PIDDIR NAME: true when the process recorded for NAME is alive and is that program.
running() {
  local pid
  pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
  running_pid "$pid" "$2"
}

# start_process PIDDIR LOGDIR NAME BINARY ARGS...: runs BINARY in the background in its own session,
# logging to LOGDIR/NAME.log, and records its pid as PIDDIR/NAME.pid.
start_process() {
  local piddir=$1 logdir=$2 name=$3 bin=$4; shift 4
  log "starting $name"
  setsid nohup "$bin" "$@" >"$logdir/$name.log" 2>&1 </dev/null &
  echo $! >"$piddir/$name.pid"
}

# stop_process PIDDIR NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10), for the
# recorded process only while its command line still names NAME (a reused pid is left alone).
stop_process() {
  local piddir=$1 name=$2 seconds=${3:-10} pid
  pid=$(cat "$piddir/$name.pid" 2>/dev/null) || return 0
  rm -f "$piddir/$name.pid"
  running_pid "$pid" "$name" || return 0
  log "stopping $name ($pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((seconds * 5))); do [[ -d /proc/$pid ]] || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

# running_pid PID NAME: true when PID is alive and its command line names NAME.
running_pid() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }

# cert PKI NAME SUBJECT EXTENSIONS: a leaf certificate PKI/NAME.{crt,key} signed by PKI/ca.
cert() {
  local pki=$1 name=$2
  openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf '%s\n' "$4") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}
CLIENT_CERT_EXT=$'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment'

# write_kubeconfig FILE SERVER PKI IDENTITY: a kubeconfig for the client cert PKI/IDENTITY.{crt,key}.
write_kubeconfig() {
  local file=$1 server=$2 pki=$3 identity=$4
  kubectl config --kubeconfig="$file" set-cluster local --server="$server" \
    --certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig="$file" set-credentials "$identity" --client-certificate="$pki/$identity.crt" \
    --client-key="$pki/$identity.key" --embed-certs >/dev/null
  kubectl config --kubeconfig="$file" set-context local --cluster=local --user="$identity" >/dev/null
  kubectl config --kubeconfig="$file" use-context local >/dev/null
}

# --- the real node ---------------------------------------------------------------------------------
# One node per machine: its bridge, addresses and iptables rules are machine-wide, so its state
# lives at fixed machine-wide paths, and any checkout's cluster-down (or the next node-up) can clean
# up after a run that was killed. Pods get 10.244.0.0/24 on the bridge, whose address is the node
# IP; Services get 10.96.0.0/16, routed onto the bridge so nothing for them leaves the machine.
NODE_NAME=task-manager-node
NODE_BRIDGE=tm-br0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
NODE_STATE=${TASK_MANAGER_NODE_STATE:-/var/lib/task-manager-node}
NODE_RUN=${TASK_MANAGER_NODE_RUN:-/run/task-manager-node}
CONTAINERD_SOCKET="$NODE_RUN/containerd/containerd.sock"
# Every iptables rule the node scripts add carries this comment, so down finds them all.
NODE_RULE_COMMENT="task-manager-node"

# node_ctr ARGS...: ctr against the node's containerd, in the namespace the kubelet uses.
node_ctr() { "$TOOLS_BIN/ctr" --address "$CONTAINERD_SOCKET" --namespace k8s.io "$@"; }

# prometheus_release: the Prometheus release of the pinned Go module (v0.316.0 is Prometheus v3.16.0).
prometheus_release() { local v=${PROMETHEUS_VERSION#v0.}; printf 'v%s.%s.%s\n' "${v:0:1}" "$((10#${v:1:2}))" "${v#*.}"; }
