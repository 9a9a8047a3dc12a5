// Package waypoint is istiod-lite's waypoint deployment controller. For
// every Gateway of class istio-waypoint it server-side applies a
// ServiceAccount, a Deployment running the weft/waypoint image and a
// Service (15008 HBONE, 15021 status, 15020 metrics), all owned by the
// Gateway so that deleting the Gateway garbage-collects them, and it
// reports the Gateway's status: Accepted, and Programmed with the
// Service's cluster IP once the Deployment has a ready replica.
package waypoint
