package nodeagent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's Prometheus metrics.
type metrics struct {
	registry  *prometheus.Registry
	enrolled  prometheus.Gauge
	failures  *prometheus.CounterVec
	addToAck  prometheus.Histogram
	ztunnels  prometheus.Gauge
	enrollOps *prometheus.CounterVec
	ruleDrift prometheus.Counter
}

// Failure reasons.
const (
	reasonNetns     = "netns"
	reasonRules     = "rules"
	reasonProbeSNAT = "probe_snat"
	reasonZtunnel   = "ztunnel"
	reasonNoZtunnel = "no_ztunnel"
	reasonAnnotate  = "annotate"
	reasonRemove    = "remove"
)

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		enrolled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_cni_pods_enrolled",
			Help: "Pods on this node whose traffic is captured and acknowledged by ztunnel.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_cni_enroll_failures_total",
			Help: "Failed enrollment steps, by reason.",
		}, []string{"reason"}),
		addToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weft_cni_add_to_ack_seconds",
			Help:    "Time from a CNI ADD reaching the agent to ztunnel's ack for the pod.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		ztunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_cni_ztunnel_connections",
			Help: "ztunnel connections on the ZDS socket.",
		}),
		enrollOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_cni_enrollments_total",
			Help: "Completed enroll and unenroll operations, by op and source (cni or reconcile).",
		}, []string{"op", "source"}),
		ruleDrift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_cni_rule_drift_repairs_total",
			Help: "Times the periodic rule check found a held pod's redirect rules changed and re-applied them.",
		}),
	}
	m.registry.MustRegister(m.enrolled, m.failures, m.addToAck, m.ztunnels, m.enrollOps, m.ruleDrift,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) failure(reason string) { m.failures.WithLabelValues(reason).Inc() }
