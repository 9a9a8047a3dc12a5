// Package lab builds and runs the Weft lab: a real multi-node Kubernetes
// cluster on one Linux machine, made of network namespaces.
//
// A lab has an underlay bridge in its own network namespace, a control-plane
// namespace running etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler, and one namespace per node running kube-proxy and
// kubelet-lite (package kubelet). The host reaches the API server through a
// veth into the underlay, so tests and kubectl run in the host namespace.
// Every namespace, link, mount and state directory carries the lab's prefix,
// so two labs can run at once and Down finds leftovers of a killed run.
//
// The Kubernetes, etcd, CoreDNS and CNI binaries are built from the Go module
// proxy by EnsureBinaries, from the pinned tools modules under k8s/.
package lab
