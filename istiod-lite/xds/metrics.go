package xds

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the xDS server's Prometheus collectors.
type Metrics struct {
	clients     prometheus.Gauge
	batches     prometheus.Counter
	pushes      *prometheus.CounterVec
	resources   *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	pushLatency prometheus.Histogram
	ackLatency  prometheus.Histogram
	convergence prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		clients:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_xds_connected_clients", Help: "Connected delta ADS streams."}),
		batches:     prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_xds_change_batches_total", Help: "Debounced model change batches distributed to clients."}),
		pushes:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_xds_pushes_total", Help: "Delta responses sent, by type."}, []string{"type"}),
		resources:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_xds_pushed_resources_total", Help: "Resources added, updated or removed in responses, by type."}, []string{"type"}),
		nacks:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_xds_nacks_total", Help: "Responses rejected by clients, by type."}, []string{"type"}),
		pushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_xds_push_latency_seconds", Help: "Time from a model change to the response carrying it being sent.", Buckets: buckets}),
		ackLatency:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_xds_ack_latency_seconds", Help: "Time from sending a response to its ACK or NACK.", Buckets: buckets}),
		convergence: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_xds_convergence_seconds", Help: "Time from a Kubernetes change to the last connected client's ACK of it.", Buckets: buckets}),
	}
	for _, c := range []prometheus.Collector{m.clients, m.batches, m.pushes, m.resources, m.nacks, m.pushLatency, m.ackLatency, m.convergence} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register xds metrics: %w", err)
		}
	}
	return m, nil
}
