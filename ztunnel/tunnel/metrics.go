package tunnel

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftmesh/weft/pkg/hbone3"
)

// Metric label values of the transport label.
const (
	transportQUIC = "quic"
	transportH2   = "h2"
)

// Metrics counts tunnels by transport. Istio's standard metrics keep their
// label sets; these are Weft's own. A nil *Metrics records nothing.
type Metrics struct {
	tunnels   *prometheus.CounterVec
	fallbacks prometheus.Counter
}

// NewMetrics registers the tunnel metrics with reg:
//
//	weft_hbone_tunnels_total{direction="outbound"|"inbound",transport="quic"|"h2"}
//	weft_hbone_quic_fallbacks_total
//
// the second counting outbound tunnels to a destination that advertises
// QUIC carried over HTTP/2 instead (its QUIC handshake failed, now or
// within the fallback period).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tunnels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_hbone_tunnels_total",
			Help: "HBONE tunnels (CONNECT streams) opened, by direction and transport.",
		}, []string{"direction", "transport"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_hbone_quic_fallbacks_total",
			Help: "Outbound tunnels to a QUIC-advertising destination carried over HTTP/2 because QUIC failed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.tunnels, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// tunnel counts one opened tunnel; transport is an hbone3 transport name.
func (m *Metrics) tunnel(direction, transport string) {
	if m == nil {
		return
	}
	t := transportH2
	if transport == hbone3.TransportQUIC {
		t = transportQUIC
	}
	m.tunnels.WithLabelValues(direction, t).Inc()
}

func (m *Metrics) fallback() {
	if m != nil {
		m.fallbacks.Inc()
	}
}
