// Package diagnose assembles everything one node knows for the person on
// call: its ztunnel and CNI agent, xDS state, the pods ztunnel holds against
// the pods Kubernetes runs there, certificates, recent connection failures
// grouped by reason (with the denying policy), and the top talkers.
package diagnose
