// Package kubelet is kubelet-lite, the only simulated part of the lab: one
// per node, run inside the node's network namespace. It registers and
// heartbeats its Node, runs the pods bound to it as local processes (each
// pod in its own network namespace wired by the node's real CNI chain
// through libcni, each container in its own mount namespace through a
// re-exec'd shim), reports pod status, and serves the kubelet API
// (container logs, exec, port-forward) that the API server proxies to.
//
// Layout of the work, one concern per file:
//
//   - node.go: Node registration, status and Lease heartbeats.
//   - manager.go, podworker.go: a worker per pod UID, from sandbox to
//     finalised deletion; container.go supervises one container
//     (restart policy, back-off, SIGTERM/grace/SIGKILL); probes.go runs
//     exec, HTTP, TCP probes inside the pod netns; status.go computes and
//     posts pod status.
//   - sandbox.go, netns_linux.go, cni.go: the pod netns (under
//     /var/run/netns with the lab's prefix, or StateDir/netns), lo up, CNI
//     ADD/CHECK/DEL with the first conf file of the conf dir, re-read at
//     every ADD. Every pod netns is also bound into StateDir/netns-view, a
//     shared mount that hostPath /var/run/netns maps to, so a node agent
//     sees namespaces created after it started (propagation_linux.go).
//   - volumes.go, env.go: volumes materialised under the pod's state dir
//     (hostPath into RootDir; projected tokens from TokenRequest, refreshed
//     at 80% of their life) and the container environment.
//   - shim*.go, mounts_linux.go: the container shim. In a private (slave)
//     mount namespace it binds volumes at their real paths without writing
//     to host directories: a missing mountpoint is created in a tmpfs
//     "mirror" of its nearest existing parent (for "/", by move + chroot).
//   - server.go, streaming.go, logs.go, pty_linux.go: the kubelet API.
package kubelet
