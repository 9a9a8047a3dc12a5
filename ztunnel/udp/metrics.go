package udp

import "github.com/prometheus/client_golang/prometheus"

// Drop reasons, the reason label of weft_udp_dropped_datagrams_total.
const (
	dropFlowLimit     = "flow_limit"
	dropWaypoint      = "waypoint"
	dropNoQUIC        = "no_quic"
	dropNoEndpoint    = "no_endpoint"
	dropConnectFailed = "connect_failed"
	dropDenied        = "denied"
	dropQueueFull     = "queue_full"
	dropTooLarge      = "too_large"
	dropWriteFailed   = "write_failed"
	dropDraining      = "draining"
)

// Metrics are the UDP flow counters. Label direction is outbound (from a
// local application) or inbound (to one); path is tunnel or passthrough.
// Sent is towards the destination application, received back from it.
type Metrics struct {
	opened, closed         *prometheus.CounterVec
	sentDgrams, recvDgrams *prometheus.CounterVec
	sentBytes, recvBytes   *prometheus.CounterVec
	dropped                *prometheus.CounterVec
}

// NewMetrics returns the metrics, registered on reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		opened:     cv("weft_udp_flows_opened_total", "UDP flows opened.", "direction", "path"),
		closed:     cv("weft_udp_flows_closed_total", "UDP flows closed.", "direction", "path"),
		sentDgrams: cv("weft_udp_sent_datagrams_total", "UDP datagrams carried towards the destination.", "direction", "path"),
		recvDgrams: cv("weft_udp_received_datagrams_total", "UDP datagrams carried back from the destination.", "direction", "path"),
		sentBytes:  cv("weft_udp_sent_bytes_total", "UDP payload bytes carried towards the destination.", "direction", "path"),
		recvBytes:  cv("weft_udp_received_bytes_total", "UDP payload bytes carried back from the destination.", "direction", "path"),
		dropped:    cv("weft_udp_dropped_datagrams_total", "UDP datagrams dropped, by reason.", "direction", "reason"),
	}
	if reg != nil {
		reg.MustRegister(m.opened, m.closed, m.sentDgrams, m.recvDgrams, m.sentBytes, m.recvBytes, m.dropped)
	}
	return m
}

func (m *Metrics) drop(direction, reason string) { m.dropped.WithLabelValues(direction, reason).Inc() }

func (m *Metrics) sent(direction, path string, n int) {
	m.sentDgrams.WithLabelValues(direction, path).Inc()
	m.sentBytes.WithLabelValues(direction, path).Add(float64(n))
}

func (m *Metrics) received(direction, path string, n int) {
	m.recvDgrams.WithLabelValues(direction, path).Inc()
	m.recvBytes.WithLabelValues(direction, path).Add(float64(n))
}
