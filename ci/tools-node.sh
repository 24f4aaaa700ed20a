#!/usr/bin/env bash
# Builds and installs what a real node needs beside the control plane: containerd, its shim and ctr, CoreDNS, the pause binary, runc, CNI plugins, iptables.
source "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "go is required to build the node tools"

# kubelet and kube-proxy are built with the control plane (ci/tools-cluster.sh), from the same
# k8s.io/kubernetes module; everything else a node runs is here.
apt_install runc containernetworking-plugins iptables
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback && -x /usr/lib/cni/portmap ]] \
  || die "containernetworking-plugins installed, but /usr/lib/cni lacks bridge, host-local, loopback or portmap"

# Several checkouts on one machine share the cache: one build at a time.
exec 9>"$TOOLS_CACHE/.node.lock"
flock 9

# containerd v2 (Debian's 1.6, which docker.io uses, is too old for Kubernetes 1.36). Its go.mod has
# no replace lines, so `go install` works; the snapshotters that need C libraries are left out.
ctrd_flags=(-tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=v${CONTAINERD_VERSION}")
for cmd in containerd containerd-shim-runc-v2 ctr; do
  go_install "$cmd" "$CONTAINERD_VERSION" "github.com/containerd/containerd/v2/cmd/$cmd@v${CONTAINERD_VERSION}" "${ctrd_flags[@]}"
done

# CoreDNS serves cluster DNS from the host, on the node's bridge address.
go_install coredns "$COREDNS_VERSION" "github.com/coredns/coredns@v${COREDNS_VERSION}" -ldflags "-s -w"

# The pause binary of the sandbox image, compiled from the Kubernetes source (build/pause) of the
# pinned release, statically, so the image can be FROM scratch.
dir=$(cached_tool pause "$KUBERNETES_VERSION")
if [[ ! -x "$dir/pause" ]]; then
  log "compiling pause from k8s.io/kubernetes v${KUBERNETES_VERSION} build/pause"
  src=$(cd "$REPO_ROOT/ci/k8s" && go mod download -json "k8s.io/kubernetes@v${KUBERNETES_VERSION}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -f "$src/build/pause/linux/pause.c" ]] || die "k8s.io/kubernetes v${KUBERNETES_VERSION} has no build/pause/linux/pause.c"
  gcc -Os -Wall -Werror -static -DVERSION="v${KUBERNETES_VERSION}" -o "$dir/pause.tmp" "$src/build/pause/linux/pause.c"
  mv "$dir/pause.tmp" "$dir/pause"
fi
link_tool pause "$dir/pause"
