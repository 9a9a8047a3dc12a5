// Package wds is a data-plane proxy's view of the mesh (ztunnel's and
// the waypoint's), fed by delta xDS: workloads
// and services (istio.workload.Address) and L4 policies
// (istio.security.Authorization). Store implements the xDS client's Handler:
// it validates every resource of a response before applying any (a bad
// response is rejected with an error naming the resource and field, which
// the client sends back as a NACK, and the last good state stays), indexes
// workloads by uid and IP and services by VIP and hostname, asks the control
// plane on demand for addresses it does not know, picks endpoints for a
// service VIP, and dumps itself for the admin endpoint.
package wds
