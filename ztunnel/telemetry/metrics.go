package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// labelNames are Istio's TCP metric labels, in a fixed order.
var labelNames = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
	"source_cluster", "source_canonical_service", "source_canonical_revision",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	"destination_version", "destination_cluster", "destination_canonical_service", "destination_canonical_revision",
	"destination_service", "destination_service_namespace", "destination_service_name",
	"request_protocol", "response_flags", "connection_security_policy",
}

// Metrics holds ztunnel's Prometheus collectors.
type Metrics struct {
	opened, closed, failed *prometheus.CounterVec
	sent, received         *prometheus.CounterVec
	xdsMessages            *prometheus.CounterVec
	refused                *prometheus.CounterVec
	Registry               *prometheus.Registry
}

// NewMetrics creates the collectors and registers them (and the Go and
// process collectors) on a fresh registry.
func NewMetrics() *Metrics {
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		opened:      counter("istio_tcp_connections_opened_total", "TCP connections opened.", labelNames),
		closed:      counter("istio_tcp_connections_closed_total", "TCP connections closed.", labelNames),
		failed:      counter("istio_tcp_connections_failed_total", "TCP connections that failed to be established.", labelNames),
		sent:        counter("istio_tcp_sent_bytes_total", "Bytes sent towards the destination.", labelNames),
		received:    counter("istio_tcp_received_bytes_total", "Bytes received from the destination.", labelNames),
		xdsMessages: counter("istio_xds_message_total", "xDS messages received, by type URL.", []string{"url"}),
		refused: counter("weft_ztunnel_connections_refused_total",
			"Connections refused before being proxied because a connection cap was reached, by direction (outbound, inbound) and reason (pod_limit, node_limit).",
			[]string{"direction", "reason"}),
		Registry: prometheus.NewRegistry(),
	}
	m.Registry.MustRegister(m.opened, m.closed, m.failed, m.sent, m.received, m.xdsMessages, m.refused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// XDSMessage counts one xDS response of typeURL.
func (m *Metrics) XDSMessage(typeURL string) {
	if m != nil {
		m.xdsMessages.WithLabelValues(typeURL).Inc()
	}
}

// Refused counts one connection refused over a cap, by direction
// ("outbound" or "inbound") and reason ("pod_limit" or "node_limit").
func (m *Metrics) Refused(direction, reason string) {
	if m != nil {
		m.refused.WithLabelValues(direction, reason).Inc()
	}
}

// Peer describes one end of a connection for labels and logs. Empty fields
// are reported as "unknown", as Istio does.
type Peer struct {
	Workload, Namespace, Principal, App, Version, Cluster string
	CanonicalService, CanonicalRevision                   string
}

// Labels are the non-peer labels of one connection.
type Labels struct {
	// Reporter is "source" (outbound) or "destination" (inbound).
	Reporter string
	// Service is the destination service hostname, namespace and name.
	Service, ServiceNamespace, ServiceName string
	// SecurityPolicy is "mutual_tls" for HBONE and "unknown" otherwise.
	SecurityPolicy string
	// ResponseFlags is "-" or Envoy-style flags such as "DENY" or "UF".
	ResponseFlags string
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func values(l Labels, src, dst Peer) []string {
	return []string{
		orUnknown(l.Reporter),
		orUnknown(src.Workload), orUnknown(src.Namespace), orUnknown(src.Principal), orUnknown(src.App), orUnknown(src.Version),
		orUnknown(src.Cluster), orUnknown(src.CanonicalService), orUnknown(src.CanonicalRevision),
		orUnknown(dst.Workload), orUnknown(dst.Namespace), orUnknown(dst.Principal), orUnknown(dst.App), orUnknown(dst.Version),
		orUnknown(dst.Cluster), orUnknown(dst.CanonicalService), orUnknown(dst.CanonicalRevision),
		orUnknown(l.Service), orUnknown(l.ServiceNamespace), orUnknown(l.ServiceName),
		"tcp", orDash(l.ResponseFlags), orUnknown(l.SecurityPolicy),
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
