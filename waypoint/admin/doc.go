// Package admin serves the waypoint's operational HTTP endpoints: the admin
// handler (/config_dump, /logging, pprof; localhost only), readiness
// (/healthz/ready) and Prometheus metrics (/metrics, /stats/prometheus).
package admin
