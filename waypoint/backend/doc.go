// Package backend keeps the waypoint's per-Service resilience state across
// requests: the circuit breaker's connection pool, outlier detection, the
// load balancer and the retry budgets of each backend Service, built from
// its TrafficPolicy and rebuilt only when that policy changes.
package backend
