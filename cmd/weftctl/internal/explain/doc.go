// Package explain answers "what will Weft do with a connection from this
// pod to that destination, and why": whether the source is in the mesh, the
// path (direct HBONE, via a waypoint, or passthrough), the destination's
// identity, and ztunnel's authorization verdict with the deciding policy,
// all computed from one ztunnel's /config_dump with ztunnel's own engine.
package explain
