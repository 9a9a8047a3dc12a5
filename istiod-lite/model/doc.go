// Package model is istiod-lite's incremental ambient index. It is fed
// Kubernetes objects (namespaces, pods, services, endpoint slices, waypoint
// Gateways, AuthorizationPolicies, PeerAuthentications) one change at a time
// and keeps the workload-discovery resources derived from them: Addresses
// (workloads and services) and Authorizations. A change recomputes only the
// resources that depend on the changed object; a listener is told the names
// of the resources whose content actually changed.
package model
