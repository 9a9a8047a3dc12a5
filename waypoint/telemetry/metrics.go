package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the waypoint's Prometheus metrics, on their own registry.
type Metrics struct {
	// Registry holds every metric below plus the Go and process collectors.
	Registry *prometheus.Registry

	requests                     *prometheus.CounterVec
	duration, reqBytes, respSize *prometheus.HistogramVec
	tcpOpened, tcpClosed         *prometheus.CounterVec
	tcpSent, tcpReceived         *prometheus.CounterVec
	xds                          *prometheus.CounterVec

	// requestSeries caches the children of the request metrics by label
	// set, so a request costs one map lookup instead of four label hashes.
	// lastSeries is the series looked up last: the requests of a tunnel
	// usually share their labels, and comparing the key to it (strings
	// that share their bytes compare by pointer) costs no hash of the 21
	// strings at all: a third of a sync.Map lookup (BenchmarkSeries).
	seriesMu      sync.RWMutex
	requestSeries map[seriesKey]*series
	lastSeries    atomic.Pointer[series]
}

type seriesKey struct {
	labels     Labels
	code       int
	grpcStatus string
}

type series struct {
	key                           seriesKey
	requests                      prometheus.Counter
	duration, reqBytes, respBytes prometheus.Observer
}

// series returns the request metrics' children for one label set.
func (m *Metrics) series(l Labels, code int, grpcStatus string) *series {
	k := seriesKey{l, code, grpcStatus}
	if s := m.lastSeries.Load(); s != nil && s.key == k {
		return s
	}
	m.seriesMu.RLock()
	s, ok := m.requestSeries[k]
	m.seriesMu.RUnlock()
	if !ok {
		s = m.newSeries(k)
	}
	m.lastSeries.Store(s)
	return s
}

// newSeries makes (or, when another request just did, finds) the series
// of k.
func (m *Metrics) newSeries(k seriesKey) *series {
	l, code, grpcStatus := k.labels, k.code, k.grpcStatus
	vals := append(l.values(), itoa(code), grpcStatus)
	if grpcStatus == "" {
		vals[len(vals)-1] = "-"
	}
	s := &series{
		key:      k,
		requests: m.requests.WithLabelValues(vals...), duration: m.duration.WithLabelValues(vals...),
		reqBytes: m.reqBytes.WithLabelValues(vals...), respBytes: m.respSize.WithLabelValues(vals...),
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	if old, ok := m.requestSeries[k]; ok {
		return old
	}
	if m.requestSeries == nil {
		m.requestSeries = map[seriesKey]*series{}
	}
	m.requestSeries[k] = s
	return s
}

// Istio's default buckets.
var (
	durationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
	bytesBuckets    = prometheus.ExponentialBuckets(1, 10, 9)
)

// NewMetrics registers the metrics on a new registry.
func NewMetrics() *Metrics {
	reqLabels := append(append([]string{}, labelNames...), "response_code", "grpc_response_status")
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total", Help: "Requests handled by the waypoint.",
		}, reqLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_request_duration_milliseconds", Help: "Request duration in milliseconds.", Buckets: durationBuckets,
		}, reqLabels),
		reqBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_request_bytes", Help: "Request size (headers and body) in bytes.", Buckets: bytesBuckets,
		}, reqLabels),
		respSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_response_bytes", Help: "Response size (headers and body) in bytes.", Buckets: bytesBuckets,
		}, reqLabels),
		tcpOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_tcp_connections_opened_total", Help: "TCP connections opened through the waypoint.",
		}, labelNames),
		tcpClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_tcp_connections_closed_total", Help: "TCP connections closed through the waypoint.",
		}, labelNames),
		tcpSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_tcp_sent_bytes_total", Help: "Bytes sent towards the destination of TCP connections.",
		}, labelNames),
		tcpReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_tcp_received_bytes_total", Help: "Bytes received from the destination of TCP connections.",
		}, labelNames),
		xds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_xds_message_total", Help: "xDS responses received, by type URL.",
		}, []string{"url"}),
	}
	m.Registry.MustRegister(m.requests, m.duration, m.reqBytes, m.respSize,
		m.tcpOpened, m.tcpClosed, m.tcpSent, m.tcpReceived, m.xds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// XDSMessage counts one xDS response of typeURL.
func (m *Metrics) XDSMessage(typeURL string) { m.xds.WithLabelValues(typeURL).Inc() }
