// Package layout holds the tests that keep the repository's shape honest:
// every package has exactly one package doc comment, no package is named
// util, helpers or common, a component (istiod-lite, ztunnel, waypoint, cni)
// never imports another component, pkg/ imports no component, and the CNI
// plugin binary stays free of client-go and gRPC. It has no code of its own.
package layout
