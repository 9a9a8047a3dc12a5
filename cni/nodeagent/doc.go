// Package nodeagent is weft-cni-agent's node agent: it puts the pods of
// its node in and out of the mesh.
//
// It watches Namespaces and the Pods scheduled to its node. A pod is
// enrolled when its namespace or the pod itself carries
// istio.io/dataplane-mode=ambient (a pod label =none opts out; host-network
// pods and pods with an Istio sidecar never are). Enrolling a pod: open its
// network namespace (the path CNI ADD gave, remembered per pod even for
// pods outside the mesh; else found by scanning /var/run/netns and then
// /proc for a namespace holding the pod IP on an interface linked to this
// node's namespace, so a pod of another cluster on the same host is never
// taken), install
// the in-pod redirect rules, add the node-level probe SNAT, hand ztunnel the
// namespace over ZDS and wait for its ack, then mark the pod
// ambient.istio.io/redirection=enabled through pods/status. Unenrolling
// reverses each step.
//
// Every RuleCheckInterval (default 30 s) the agent compares each held
// pod's live iptables rules, ip rule and table-100 route with the expected
// set and re-applies them if they drifted (someone deleted them by hand, a
// tool flushed the tables), with a RedirectRulesRepaired event on the pod
// and weft_cni_rule_drift_repairs_total.
//
// The agent serves ZDS (zdsServer) to ztunnel, the CNI plugin's API
// (cni/agentapi) on a unix socket, /healthz, /readyz and /metrics over
// HTTP, and on a localhost admin address (DefaultAdminAddr) GET
// /debug/pods: every held pod with a live check of its rules (PodsReport),
// which weftctl reads through a port-forward. It records enrolled namespaces in the enrollment file the plugin
// reads when the agent is down. On start it reconciles: rules it finds in
// enrolled pods are adopted (Apply is idempotent), rules and probe SNAT
// entries of pods no longer enrolled are removed.
package nodeagent
