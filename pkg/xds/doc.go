// Package xds is a delta xDS (incremental ADS) client shared by ztunnel and
// the waypoint. It keeps one DeltaAggregatedResources stream to the control
// plane, subscribes to a set of type URLs (wildcard) and to individual names
// on demand, hands each response to a consumer-supplied Handler, ACKs or
// NACKs it according to the Handler's verdict, and reconnects with back-off,
// resuming from the resource versions it last accepted.
package xds
