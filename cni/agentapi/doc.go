// Package agentapi is the contract between the weft-cni plugin and the
// weft-cni-agent on the same node: a small JSON-over-HTTP API on a unix
// socket, and the enrollment file the agent keeps so that the plugin can
// fail closed when the agent is down.
//
// The plugin calls Add during CNI ADD; the agent answers once the pod's
// capture is installed and ztunnel has acknowledged the pod (Enrolled
// true), at once for a pod that is not enrolled (Enrolled false), or with
// an error. When the agent cannot be reached the plugin consults the
// enrollment file: a pod in a namespace listed there is refused (the
// kubelet retries), any other pod starts normally. Pods enrolled only by
// their own label in an unlabelled namespace therefore start outside the
// mesh while the agent is down; the agent enrolls them, without a restart,
// when it comes back.
//
// This package must stay free of client-go and gRPC: the plugin binary
// imports it.
package agentapi
