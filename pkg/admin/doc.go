// Package admin serves the three operational HTTP endpoints of Weft's
// data-plane proxies (ztunnel and the waypoint): the admin handler
// (localhost:15000 only: /config_dump, /logging, /debug/pprof/), readiness
// (15021: /healthz/ready) and Prometheus metrics (15020: /metrics and
// /stats/prometheus).
package admin
