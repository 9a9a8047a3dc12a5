// Command weft-lab runs the Weft lab: a real multi-node Kubernetes cluster
// on this machine, in network namespaces.
//
//	weft-lab build                      build the pinned Kubernetes binaries
//	weft-lab up [--nodes N]             start a lab and wait until its nodes are Ready
//	weft-lab status | kubeconfig        show the lab / print its kubeconfig path
//	weft-lab exec [-n NS] POD -- CMD    run CMD in a pod's network namespace
//	weft-lab down [--all]               stop the lab and remove everything it made
//
// Hidden: `serve` (the detached supervisor `up` starts), `kubelet --config F`
// (kubelet-lite, run per node inside the node's namespace) and
// `kubelet-shim ...` (the container shim kubelet-lite re-executes).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/e2e/lab/kubelet"
)

func main() {
	// The shim runs before anything else: it must not start goroutines or
	// parse flags it does not own.
	if len(os.Args) > 1 && os.Args[1] == "kubelet-shim" {
		os.Exit(kubelet.ShimMain(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-lab:", err)
		os.Exit(1)
	}
}
