package ca

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Failure reasons, the values of the reason label.
const (
	reasonNoToken         = "no_token"
	reasonUnauthenticated = "unauthenticated"
	reasonTokenReview     = "token_review_error"
	reasonClusterID       = "cluster_id_mismatch"
	reasonImpersonation   = "impersonation_denied"
	reasonNotReady        = "not_ready"
	reasonTrustDomain     = "unknown_trust_domain"
	reasonIdentity        = "identity_mismatch"
	reasonValidity        = "invalid_validity"
	reasonSign            = "sign_error"
)

// metrics are the CA's Prometheus metrics.
type metrics struct {
	issued   *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  prometheus.Histogram
	rootExp  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "ca", Name: "certificates_issued_total",
			Help: "Workload certificates issued, by whether the caller impersonated a pod (own|impersonated).",
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "ca", Name: "certificate_failures_total",
			Help: "CreateCertificate requests refused or failed, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "weft", Subsystem: "ca", Name: "signing_duration_seconds",
			Help:    "Time to handle a successful CreateCertificate request, authentication included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. ~3.3s
		}),
		rootExp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "ca", Name: "root_cert_expiry_timestamp_seconds",
			Help: "Unix time at which the CA's root certificate expires.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.issued, m.failures, m.latency, m.rootExp} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ca metrics: %w", err)
		}
	}
	return m, nil
}
