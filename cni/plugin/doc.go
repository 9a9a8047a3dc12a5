// Package plugin is weft-cni, the chained CNI plugin that holds a new pod's
// start until the pod's traffic capture is in place.
//
// It runs after the primary plugin (which created the interface and
// assigned the IPs) and passes the previous result through unchanged. On
// ADD it asks the node agent (cni/agentapi) whether the pod is enrolled;
// for an enrolled pod the agent answers only once the redirect rules are
// installed in the pod's namespace and ztunnel has acknowledged the pod, so
// no packet leaves before capture. If the agent cannot be reached, a pod in
// a namespace the agent last recorded as enrolled gets a CNI error (the
// kubelet retries); every other pod proceeds. DEL and CHECK inform the
// agent; STATUS and VERSION need nothing from it.
//
// The plugin writes only its result (or CNI error) to stdout and logs to a
// file. It must not import client-go or gRPC.
package plugin
