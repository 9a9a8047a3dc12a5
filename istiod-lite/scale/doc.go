// Package scale is istiod-lite's scale benchmark. Run creates namespaces,
// services and pods (pod IPs and readiness set through the status
// subresource, so nothing needs to run) through a Kubernetes client,
// connects K delta-xDS clients to istiod-lite, waits until every client
// holds every pod, then changes pods one at a time and measures the time
// from each change to the moment every client has applied (and so ACKs) it.
// Process figures (resident and anonymous memory, CPU seconds, cold start
// to ready) come from MeasureProcess and ColdStart.
package scale
