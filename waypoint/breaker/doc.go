// Package breaker implements the waypoint's circuit breaking for one
// backend: a Pool that limits connections, concurrent requests and the
// queue of requests waiting for a slot (l7api.ConnectionPool), and
// Outliers, which ejects endpoints after consecutive errors for a growing
// time (l7api.OutlierDetection).
package breaker
