#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, controller-manager, scheduler, kubectl, etcd), the node's kubelet and kube-proxy.
source "$(dirname "$0")/lib.sh"

# The wrapper module ci/k8s pins k8s.io/kubernetes and replaces each staging module with its
# published release; refuse to build if it and versions.env disagree.
mod="$REPO_ROOT/ci/k8s/go.mod"
grep -qE "^\s+k8s.io/kubernetes v${KUBERNETES_VERSION}( |\$)" "$mod" \
  || die "ci/k8s/go.mod does not require k8s.io/kubernetes v${KUBERNETES_VERSION} (ci/versions.env)"
grep -qE "go.etcd.io/etcd/server/v3 v${ETCD_VERSION}( |\$)" "$mod" \
  || die "ci/k8s/go.mod does not require go.etcd.io/etcd/server/v3 v${ETCD_VERSION} (ci/versions.env)"

# Several checkouts on one machine share the cache: one build at a time, the others wait for it.
exec 9>"$TOOLS_CACHE/.cluster.lock"
flock 9

bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy etcd)
dir=$(cached_tool kubernetes "${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}")
incomplete=0
for b in "${bins[@]}"; do [[ -x "$dir/$b" ]] || incomplete=1; done
if ((incomplete)); then
  log "building Kubernetes v${KUBERNETES_VERSION} control plane, kubelet, kube-proxy and etcd v${ETCD_VERSION} (long on 2 cores)"
  minor=${KUBERNETES_VERSION#*.}; minor=${minor%%.*}
  # The module proxy carries no git metadata; the build date is the release's own publish time
  # (from the proxy's .info) so that rebuilding gives the same binaries.
  info=$(cd "$REPO_ROOT/ci/k8s" && go mod download -json "k8s.io/kubernetes@v${KUBERNETES_VERSION}" | sed -n 's/.*"Info": "\(.*\)".*/\1/p')
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v${KUBERNETES_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
    ldflags+=" -X $pkg.gitCommit=module-proxy-v${KUBERNETES_VERSION} -X $pkg.gitTreeState=archive"
    ldflags+=" -X $pkg.buildDate=${build_date}"
  done
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  (cd "$REPO_ROOT/ci/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy ./cmd/etcd)
  for b in "${bins[@]}"; do mv "$tmp/$b" "$dir/$b"; done
  rmdir "$tmp"
fi
for b in "${bins[@]}"; do link_tool "$b" "$dir/$b"; done

