// Package kubelet is kubelet-lite, the only simulated part of the lab: one
// per node, run inside the node's network namespace. It registers and
// heartbeats its Node, runs the pods bound to it as local processes (each
// pod in its own network namespace wired by the node's real CNI chain
// through libcni, each container in its own mount namespace through a
// re-exec'd shim), reports pod status, and serves the kubelet API
// (container logs, exec, port-forward) that the API server proxies to.
package kubelet
