// Package fault decides, per request, whether the waypoint injects a
// delay and/or an abort as configured by a route's l7api.FaultInjection.
// It only decides; the proxy applies the delay (honouring the request's
// context) and writes the abort response.
package fault
