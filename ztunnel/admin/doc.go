// Package admin serves ztunnel's three HTTP endpoints: the admin server
// (localhost:15000: /config_dump, /logging, /debug/pprof/), readiness
// (15021: /healthz/ready) and metrics (15020: /metrics and
// /stats/prometheus).
package admin
