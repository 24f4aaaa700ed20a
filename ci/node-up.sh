#!/usr/bin/env bash
# Starts the real node of the local cluster (containerd, kubelet, kube-proxy, CoreDNS on a private bridge) against the control plane of ci/cluster-up.sh.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/ci/cluster-lib.sh"
# Called by ci/cluster-up.sh once the apiserver answers; needs KUBECONFIG (admin), CLUSTER_STATE
# (the control plane's .cluster, for its CA) and APISERVER_URL. The host changes it makes are undone
# by ci/node-down.sh, which this script runs first when it finds the remains of an earlier node.

: "${CLUSTER_STATE:?}" "${APISERVER_URL:?}" "${KUBECONFIG:?}"
((EUID == 0)) || die "a real node needs root (bridge, iptables, mounts, cgroups)"
for bin in kubelet kube-proxy containerd containerd-shim-runc-v2 ctr coredns pause; do
  [[ -x "$TOOLS_BIN/$bin" ]] || die "$bin is not built; run make tools"
done
command -v runc >/dev/null || die "runc is missing; run ci/tools-node.sh (make tools)"

owner=$(cat "$NODE_RUN/owner" 2>/dev/null || true)
if [[ -n "$owner" && "$owner" != "$CLUSTER_STATE" ]] && running "$owner/pids" kube-apiserver; then
  die "the node is in use by the cluster of $owner (one node per machine); run make down there first"
fi
if [[ -e "$NODE_RUN" || -e "$NODE_STATE" ]] || ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
  log "found the remains of an earlier node; cleaning them up first"
  "$REPO_ROOT/ci/node-down.sh"
fi

pids="$NODE_RUN/pids" logs="$CLUSTER_STATE/logs" pki="$NODE_STATE/pki"
LOG_DIR=$logs
mkdir -p "$pids" "$logs" "$pki" "$NODE_STATE"/{kubelet,pod-logs,volume-plugins,cni/net.d,cni/ipam,cni/cache,volumes} \
  "$NODE_RUN/containerd"
chmod 700 "$NODE_STATE" "$NODE_RUN"
printf '%s\n' "$CLUSTER_STATE" >"$NODE_RUN/owner"
# Host paths the kubelet and CNI create outside the node's directories whatever they are told (the
# device-plugin socket, the container log links, CNI's result cache): the ones missing now are the
# node's, and node-down removes them.
for path in /var/lib/kubelet /var/log/containers /var/lib/cni; do
  [[ -e "$path" ]] || printf '%s\n' "$path"
done >"$NODE_RUN/created-paths"

# --- host settings the node changes: saved first, restored by node-down -----------------------------
sysctls=(net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory)
for s in "${sysctls[@]}"; do printf '%s=%s\n' "$s" "$(sysctl -n "$s")"; done >"$NODE_RUN/sysctl.saved"

# --- network: the bridge (node IP), the Service route, and the rule that keeps pod traffic inside ---
log "bridge $NODE_BRIDGE $NODE_IP/${POD_CIDR#*/}, Services $SERVICE_CIDR on it"
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
# In mangle, ahead of every filter rule kube-proxy adds: nothing from the bridge is forwarded to
# another interface, so pods reach only each other, Services and this host.
iptables -t mangle -I FORWARD 1 -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" \
  -m comment --comment "$NODE_RULE_COMMENT" -j DROP
sysctl -qw net.ipv4.ip_forward=1

cat >"$NODE_STATE/cni/net.d/10-task-manager.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "task-manager",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR", "gw": "$NODE_IP"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

# --- certificates and kubeconfigs from the cluster CA ------------------------------------------------
cp "$CLUSTER_STATE/pki/ca.crt" "$CLUSTER_STATE/pki/ca.key" "$pki/"
log "node certificates in $pki"
cert "$pki" kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$CLIENT_CERT_EXT"
cert "$pki" kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" "$(printf '%s\n' \
  "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME" "extendedKeyUsage=serverAuth" \
  "keyUsage=digitalSignature,keyEncipherment")"
cert "$pki" kube-proxy "/CN=system:kube-proxy" "$CLIENT_CERT_EXT"
cert "$pki" coredns "/CN=task-manager:coredns" "$CLIENT_CERT_EXT"
for identity in kubelet-client kube-proxy coredns; do
  write_kubeconfig "$NODE_STATE/$identity.kubeconfig" "$APISERVER_URL" "$pki" "$identity"
done
rm -f "$pki/ca.key"

# --- containerd ---------------------------------------------------------------------------------
# Its own root, state and socket; the v2 shim named by path (Debian's docker.io puts a 1.6 shim
# earlier in PATH); root here lacks CAP_SYS_RESOURCE, so oom_score_adj may only be raised; the
# sandbox image pinned (and never pulled); netns mounts under its state dir; NRI off; no config
# imported from /etc/containerd (config version 4 would by default).
PAUSE_IMAGE="localhost/task-manager-node/pause:v$KUBERNETES_VERSION"
cat >"$NODE_STATE/containerd.toml" <<TOML
version = 4
root = "$NODE_STATE/containerd"
state = "$NODE_RUN/containerd/state"
imports = []
[plugins."io.containerd.server.v1.grpc"]
  address = "$CONTAINERD_SOCKET"
[plugins."io.containerd.server.v1.ttrpc"]
  address = "$CONTAINERD_SOCKET.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_STATE/containerd-opt"
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "$NODE_RUN/s"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$NODE_STATE/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "$(readlink -f "$TOOLS_BIN/containerd-shim-runc-v2")"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$NODE_RUN/runc"
        SystemdCgroup = false
TOML
start_process "$pids" "$logs" containerd "$TOOLS_BIN/containerd" --config "$NODE_STATE/containerd.toml"
wait_for containerd 30 node_ctr version

# The sandbox image, then the rest of what the node runs, from the local Docker engine.
"$REPO_ROOT/ci/node-images.sh" pause

# --- kubelet ------------------------------------------------------------------------------------
# cgroup v1 with the cgroupfs driver; webhook authn/authz against the apiserver (Node,RBAC); no
# read-only port; images are never garbage-collected (imported ones cannot be pulled back) and
# eviction thresholds are low; every directory it owns is under the node state; pods get the
# cluster DNS and no host resolv.conf (nothing to resolve outside the cluster).
cat >"$NODE_STATE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: $NODE_IP
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: ""
podCIDR: $POD_CIDR
podLogsDir: $NODE_STATE/pod-logs
volumePluginDir: $NODE_STATE/volume-plugins
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
maxPods: 60
YAML
start_process "$pids" "$logs" kubelet "$TOOLS_BIN/kubelet" --config "$NODE_STATE/kubelet.yaml" \
  --kubeconfig "$NODE_STATE/kubelet-client.kubeconfig" --hostname-override "$NODE_NAME" \
  --node-ip "$NODE_IP" --root-dir "$NODE_STATE/kubelet" --cert-dir "$pki" \
  --node-labels "topology.kubernetes.io/zone=local" --v 1
wait_for "node $NODE_NAME" 90 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s

# --- kube-proxy (iptables mode) -------------------------------------------------------------------
# Service traffic is masqueraded to the node IP so replies come back through the host's conntrack;
# NodePorts only on the bridge address; the host's conntrack settings are left as they are.
cat >"$NODE_STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
mode: iptables
clusterCIDR: $POD_CIDR
nodePortAddresses: [$NODE_IP/32]
healthzBindAddress: $NODE_IP:10256
metricsBindAddress: $NODE_IP:10249
iptables: {masqueradeAll: true, localhostNodePorts: false, minSyncPeriod: 1s}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
start_process "$pids" "$logs" kube-proxy "$TOOLS_BIN/kube-proxy" --config "$NODE_STATE/kube-proxy.yaml" --v 1
wait_for kube-proxy 60 curl -fsS "http://$NODE_IP:10256/healthz"

# --- CoreDNS on the bridge address: cluster names only, nothing forwarded ---------------------------
kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "task-manager:coredns"}
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "task-manager:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "task-manager:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "task-manager:coredns"}]
YAML
cat >"$NODE_STATE/Corefile" <<COREFILE
.:53 {
    bind $NODE_IP
    errors
    ready $NODE_IP:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $NODE_STATE/coredns.kubeconfig local
        pods insecure
    }
    cache 5
}
COREFILE
start_process "$pids" "$logs" coredns "$TOOLS_BIN/coredns" -conf "$NODE_STATE/Corefile"
wait_for coredns 60 curl -fsS "http://$NODE_IP:8181/ready"

# --- storage: a default StorageClass of static local volumes on the node ---------------------------
# No provisioner: a few PersistentVolumes are made here, one directory each under the node state,
# bound on first use (WaitForFirstConsumer). Enough for the chart's SQLite claim and the tests.
{
  cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-static
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
YAML
  for i in 1 2 3 4; do
    mkdir -p "$NODE_STATE/volumes/pv-$i"
    cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-pv-$i}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-static
  local: {path: $NODE_STATE/volumes/pv-$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]
YAML
  done
} | kubectl apply -f - >/dev/null

log "node $NODE_NAME Ready at $NODE_IP (containerd v$CONTAINERD_VERSION, kubelet v$KUBERNETES_VERSION)"
