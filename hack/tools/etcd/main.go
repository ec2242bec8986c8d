// Command etcd is etcd's own server, built from its module so that the local
// control plane gets an etcd recent enough for Kubernetes 1.35.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
