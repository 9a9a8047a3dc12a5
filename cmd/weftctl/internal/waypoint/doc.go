// Package waypoint builds, applies, lists and removes waypoints: Gateway API
// Gateways of class istio-waypoint with one HBONE listener on 15008, and
// the istio.io/use-waypoint namespace label that puts them in the path.
package waypoint
