#!/usr/bin/env bash
# Starts the local control plane (etcd, apiserver, controller-manager, scheduler, kwok) on loopback.
source "$(dirname "$0")/lib.sh"
# Everything lives in .cluster/ (gitignored): certificates, etcd data, logs, pids and the kubeconfig
# (.cluster/kubeconfig). Idempotent: a healthy running cluster is left as it is. Ports can be moved
# with CLUSTER_*_PORT when the defaults are taken. No container ever runs: kwok plays the kubelet.

STATE="$REPO_ROOT/.cluster"
ETCD_PORT=${CLUSTER_ETCD_PORT:-23790}
ETCD_PEER_PORT=${CLUSTER_ETCD_PEER_PORT:-23800}
APISERVER_PORT=${CLUSTER_APISERVER_PORT:-26443}
KCM_PORT=${CLUSTER_CONTROLLER_MANAGER_PORT:-20257}
SCHEDULER_PORT=${CLUSTER_SCHEDULER_PORT:-20259}
NODES=${CLUSTER_NODES:-3}
export KUBECONFIG="$STATE/kubeconfig"

components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# running NAME: true when the process recorded for NAME is alive and is that program.
running() {
  local pid
  pid=$(cat "$STATE/pids/$1.pid" 2>/dev/null) || return 1
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"
}

# require_port NAME PORT VARIABLE: dies with a clear message when something already listens there.
require_port() {
  if ss -Hltn "sport = :$2" | grep -q .; then
    die "port $2 for $1 is already in use on this machine ($(ss -Hltnp "sport = :$2" | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1)); stop that or set $3 to a free port"
  fi
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds or the time is up.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what not ready after ${seconds}s; see $STATE/logs/"
    sleep 0.5
  done
}

# start NAME ARGS...: runs a component in the background, logging to .cluster/logs/NAME.log.
start() {
  local name=$1; shift
  log "starting $name"
  setsid nohup "$TOOLS_BIN/$name" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name.pid"
}

for bin in "${components[@]}" kubectl; do
  [[ -x "$TOOLS_BIN/$bin" ]] || die "$bin is not built; run ci/tools-cluster.sh (make tools) first"
done

if [[ -d "$STATE" ]]; then
  all=1
  for c in "${components[@]}"; do running "$c" || all=0; done
  if ((all)) && kubectl get --raw=/readyz >/dev/null 2>&1; then
    log "cluster already up ($KUBECONFIG)"
    exit 0
  fi
  log "found a partial cluster in .cluster; tearing it down first"
  "$REPO_ROOT/ci/cluster-down.sh"
fi

require_port etcd "$ETCD_PORT" CLUSTER_ETCD_PORT
require_port "etcd peer" "$ETCD_PEER_PORT" CLUSTER_ETCD_PEER_PORT
require_port kube-apiserver "$APISERVER_PORT" CLUSTER_APISERVER_PORT
require_port kube-controller-manager "$KCM_PORT" CLUSTER_CONTROLLER_MANAGER_PORT
require_port kube-scheduler "$SCHEDULER_PORT" CLUSTER_SCHEDULER_PORT

"$REPO_ROOT/ci/crds.sh"

mkdir -p "$STATE"/{pki,pids,logs,etcd}
chmod 700 "$STATE"
pki="$STATE/pki"

# --- certificates: one throwaway CA, the serving cert, a client cert per identity, SA keys -------
log "generating certificates and service-account keys in .cluster/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=task-manager-local-cluster-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
# cert NAME SUBJECT EXTENSIONS: a leaf certificate signed by the CA.
cert() {
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf '%s\n' "$3") -out "$pki/$1.crt" 2>/dev/null
  rm -f "$pki/$1.csr"
}
cert apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
  "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
  "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment")"
client_ext=$'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment'
cert admin "/O=system:masters/CN=local-cluster-admin" "$client_ext"
cert controller-manager "/CN=system:kube-controller-manager" "$client_ext"
cert scheduler "/CN=system:kube-scheduler" "$client_ext"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

# kubeconfig NAME CERT: a kubeconfig for one identity.
kubeconfig() {
  local file="$STATE/$1.kubeconfig"
  kubectl config --kubeconfig="$file" set-cluster local --server="https://127.0.0.1:$APISERVER_PORT" \
    --certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig="$file" set-credentials "$2" --client-certificate="$pki/$2.crt" \
    --client-key="$pki/$2.key" --embed-certs >/dev/null
  kubectl config --kubeconfig="$file" set-context local --cluster=local --user="$2" >/dev/null
  kubectl config --kubeconfig="$file" use-context local >/dev/null
}
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
mv "$STATE/admin.kubeconfig" "$KUBECONFIG"

# --- etcd ---------------------------------------------------------------------------------------
start etcd --name local --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes 1073741824 --log-level warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver: PodSecurity admission on (also in the default set; named so it can't drift) --
start kube-apiserver --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
  --secure-port "$APISERVER_PORT" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
  --allow-privileged=false --profiling=false --v 1
wait_for kube-apiserver 120 kubectl get --raw=/readyz

# --- controllers, scheduler and kwok ---------------------------------------------------------------
start kube-controller-manager --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=true --service-cluster-ip-range 10.96.0.0/16 \
  --profiling=false --v 1
start kube-scheduler --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false --v 1

# kwok simulates the kubelet with the stages kwokctl uses by default, taken unchanged from the kwok
# module at the pinned version: node-initialize, node-heartbeat-with-lease, pod-ready, pod-complete,
# pod-delete. pod-complete only matches pods owned by a Job, so Jobs (the migration hook) complete,
# while a bare pod such as the `helm test` pod stays Running and never reports a result.
kwok_src=$(go mod download -json "sigs.k8s.io/kwok@v${KWOK_VERSION}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -n "$kwok_src" ]] || die "could not download sigs.k8s.io/kwok@v${KWOK_VERSION} for its stages"
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
  pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  printf -- '---\n'; cat "$kwok_src/kustomize/stage/$stage.yaml"
done >"$STATE/kwok-stages.yaml"
start kwok --kubeconfig "$KUBECONFIG" --config "$STATE/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds 40 --cidr 10.244.0.0/16 --node-ip 10.0.0.1

wait_for "the default service account" 60 kubectl -n default get serviceaccount default

# --- fake nodes (one per zone, so topology spread has somewhere to go) ------------------------------
zones=(zone-a zone-b zone-c)
for i in $(seq 0 $((NODES - 1))); do
  zone=${zones[i % 3]}
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    topology.kubernetes.io/zone: $zone
    type: kwok
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
  capacity: {cpu: "32", memory: 128Gi, pods: "110"}
YAML
done
wait_for "kwok nodes" 60 kubectl wait --for=condition=Ready node --all --timeout=5s

# --- CRDs ----------------------------------------------------------------------------------------
log "installing CRDs from .tools/crds"
kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/.tools/crds/" >/dev/null
kubectl wait --for condition=established crd --all --timeout=60s >/dev/null

log "cluster up: Kubernetes $(kubectl version -o json | jq -r .serverVersion.gitVersion), $NODES kwok nodes; export KUBECONFIG=$KUBECONFIG"
