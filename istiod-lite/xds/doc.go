// Package xds serves istiod-lite's ambient model over delta ADS
// (envoy.service.discovery.v3.AggregatedDiscoveryService/
// DeltaAggregatedResources) with Istio's WDS type URLs
// (istio.workload.Address, istio.security.Authorization). Each connection
// keeps what it subscribed to (wildcard, names or "<network>/<ip>"
// aliases) and the version of every resource it holds, and is sent only
// the resources whose version differs. Model changes are debounced and
// merged into a per-connection pending set, so a slow client delays only
// itself and receives one coalesced delta when it catches up.
package xds
