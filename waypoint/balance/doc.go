// Package balance picks the endpoint of a backend for each request. The
// default for HTTP is peak-EWMA with power of two choices (the Finagle and
// Linkerd algorithm): each endpoint keeps an exponentially weighted moving
// average of its latency that jumps to a new peak at once and decays with
// a time constant, its cost is that average × (requests pending + 1), and
// the cheaper of two randomly chosen endpoints wins. Round robin, least
// request (power of two choices by pending requests) and random are also
// offered. Every balancer skips endpoints a predicate rejects (the
// breaker's ejected endpoints) unless that would leave none.
package balance
