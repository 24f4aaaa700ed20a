#!/usr/bin/env bash
# Starts the local cluster: the control plane (etcd, apiserver, controller-manager, scheduler) on loopback and a real node (ci/node-up.sh).
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/ci/cluster-lib.sh"
# The control plane lives in .cluster/ (gitignored): certificates, etcd data, logs, pids and the
# kubeconfig (.cluster/kubeconfig); the node's state is machine-wide (ci/cluster-lib.sh).
# Idempotent: a healthy running cluster is left as it is. Ports can be moved with CLUSTER_*_PORT
# when the defaults are taken.

STATE="$REPO_ROOT/.cluster"
ETCD_PORT=${CLUSTER_ETCD_PORT:-23790}
ETCD_PEER_PORT=${CLUSTER_ETCD_PEER_PORT:-23800}
APISERVER_PORT=${CLUSTER_APISERVER_PORT:-26443}
KCM_PORT=${CLUSTER_CONTROLLER_MANAGER_PORT:-20257}
SCHEDULER_PORT=${CLUSTER_SCHEDULER_PORT:-20259}
export KUBECONFIG="$STATE/kubeconfig"
LOG_DIR="$STATE/logs"

components=(etcd kube-apiserver kube-controller-manager kube-scheduler)

# require_port NAME PORT VARIABLE: dies with a clear message when something already listens there.
require_port() {
  if ss -Hltn "sport = :$2" | grep -q .; then
    die "port $2 for $1 is already in use on this machine ($(ss -Hltnp "sport = :$2" | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1)); stop that or set $3 to a free port"
  fi
}

# start NAME ARGS...: runs a control-plane component in the background, logging to .cluster/logs/.
start() { local name=$1; shift; start_process "$STATE/pids" "$LOG_DIR" "$name" "$TOOLS_BIN/$name" "$@"; }

for bin in "${components[@]}" kubectl kubelet kube-proxy; do
  [[ -x "$TOOLS_BIN/$bin" ]] || die "$bin is not built; run ci/tools-cluster.sh (make tools) first"
done

if [[ -d "$STATE" ]]; then
  all=1
  for c in "${components[@]}"; do running "$STATE/pids" "$c" || all=0; done
  if ((all)) && running "$NODE_RUN/pids" kubelet && kubectl get --raw=/readyz >/dev/null 2>&1 \
    && kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s >/dev/null 2>&1; then
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
cert "$pki" apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
  "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
  "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment")"
cert "$pki" admin "/O=system:masters/CN=local-cluster-admin" "$CLIENT_CERT_EXT"
cert "$pki" controller-manager "/CN=system:kube-controller-manager" "$CLIENT_CERT_EXT"
cert "$pki" scheduler "/CN=system:kube-scheduler" "$CLIENT_CERT_EXT"
cert "$pki" apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$CLIENT_CERT_EXT"
# The aggregation layer (metrics-server's metrics.k8s.io): the apiserver proxies to extension API
# servers with a front-proxy client certificate from a CA of its own.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=task-manager-front-proxy-ca" \
  -keyout "$pki/front-proxy-ca.key" -out "$pki/front-proxy-ca.crt" 2>/dev/null
mkdir -p "$pki/front-proxy"
cp "$pki/front-proxy-ca.crt" "$pki/front-proxy/ca.crt"
cp "$pki/front-proxy-ca.key" "$pki/front-proxy/ca.key"
cert "$pki/front-proxy" front-proxy-client "/CN=front-proxy-client" "$CLIENT_CERT_EXT"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"
for identity in admin controller-manager scheduler; do
  write_kubeconfig "$STATE/$identity.kubeconfig" "$APISERVER_URL" "$pki" "$identity"
done
mv "$STATE/admin.kubeconfig" "$KUBECONFIG"

# --- etcd ---------------------------------------------------------------------------------------
start etcd --name local --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes 1073741824 --log-level warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver: PodSecurity admission on (also in the default set; named so it can't drift) --
# Pods reach it as they do on any cluster, through the `kubernetes` Service, whose endpoint is the
# advertised node IP; it listens on every address, but a chain of its own drops its port on every
# interface but loopback and the node's bridge.
apiserver_chain="TM-APISERVER-$APISERVER_PORT"
printf '%s\n' "$apiserver_chain" >"$STATE/apiserver-chain"
for cmd in iptables ip6tables; do # it listens dual-stack; pods have IPv4 only
  "$cmd" -N "$apiserver_chain"
  "$cmd" -A "$apiserver_chain" -i lo -j RETURN
  [[ $cmd == ip6tables ]] || iptables -A "$apiserver_chain" -i "$NODE_BRIDGE" -j RETURN
  "$cmd" -A "$apiserver_chain" -j DROP
  "$cmd" -I INPUT -p tcp --dport "$APISERVER_PORT" -j "$apiserver_chain"
done
start kube-apiserver --bind-address 0.0.0.0 --advertise-address "$NODE_IP" \
  --secure-port "$APISERVER_PORT" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
  --kubelet-preferred-address-types InternalIP \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- --enable-aggregator-routing=true \
  --proxy-client-cert-file "$pki/front-proxy/front-proxy-client.crt" \
  --proxy-client-key-file "$pki/front-proxy/front-proxy-client.key" \
  --allow-privileged=false --profiling=false --v 1
wait_for kube-apiserver 120 kubectl get --raw=/readyz

# --- controllers and scheduler --------------------------------------------------------------------
start kube-controller-manager --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=true --service-cluster-ip-range "$SERVICE_CIDR" \
  --profiling=false --v 1
start kube-scheduler --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false --v 1

wait_for "the default service account" 60 kubectl -n default get serviceaccount default

# --- CRDs ----------------------------------------------------------------------------------------
log "installing CRDs from .tools/crds"
kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/.tools/crds/" >/dev/null
kubectl wait --for condition=established crd --all --timeout=60s >/dev/null

# --- the node ----------------------------------------------------------------------------------------
CLUSTER_STATE="$STATE" APISERVER_URL="$APISERVER_URL" "$REPO_ROOT/ci/node-up.sh"

log "cluster up: Kubernetes $(kubectl version -o json | jq -r .serverVersion.gitVersion), node $NODE_NAME; export KUBECONFIG=$KUBECONFIG"
