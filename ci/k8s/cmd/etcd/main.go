// Command etcd runs the etcd server from its published Go module, at the version k8s.io/kubernetes
// itself requires, so the local control plane stores its state in the etcd it was tested with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
