// Package telemetry records ztunnel's connections the way Istio's ztunnel
// does: Prometheus TCP metrics with Istio's names and labels
// (istio_tcp_connections_opened_total and friends, reporter source or
// destination), one JSON access log record "connection complete" per
// connection, and the table of open connections for the admin dump.
package telemetry
