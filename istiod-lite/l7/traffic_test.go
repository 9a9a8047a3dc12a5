package l7

import (
	"testing"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func TestTranslateDestinationRule(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		host   string
		want   string
		fields []string
		fatal  bool
	}{
		{
			name: "short host, every mapped field",
			spec: `{"host":"reviews","trafficPolicy":{
				"connectionPool":{"tcp":{"maxConnections":100,"connectTimeout":"2s"},"http":{"http1MaxPendingRequests":10,"http2MaxRequests":50,"maxRequestsPerConnection":5}},
				"outlierDetection":{"consecutive5xxErrors":3,"consecutiveGatewayErrors":2,"interval":"5s","baseEjectionTime":"30s","maxEjectionPercent":50},
				"loadBalancer":{"simple":"LEAST_REQUEST"}}}`,
			host: "reviews.demo.svc.cluster.local",
			want: `{"service":{"namespace":"demo","name":"reviews","hostname":"reviews.demo.svc.cluster.local"},
				"connectionPool":{"maxConnections":100,"maxPendingRequests":10,"maxRequests":50,"maxRequestsPerConnection":5,"connectTimeout":"2s"},
				"outlierDetection":{"consecutive5xxErrors":3,"consecutiveGatewayErrors":2,"interval":"5s","baseEjectionTime":"30s","maxEjectionPercent":50},
				"loadBalancer":{"policy":"LEAST_REQUEST"}}`,
		},
		{name: "round robin", spec: `{"host":"ratings.prod.svc.cluster.local","trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}}`, host: "ratings.prod.svc.cluster.local",
			want: `{"service":{"namespace":"prod","name":"ratings","hostname":"ratings.prod.svc.cluster.local"},"loadBalancer":{"policy":"ROUND_ROBIN"}}`},
		{name: "name.namespace is not completed (as in Istio)", spec: `{"host":"ratings.prod"}`, fields: []string{"spec.host"}, fatal: true},
		{name: "FQDN host, RANDOM", spec: `{"host":"a.b.svc.cluster.local","trafficPolicy":{"loadBalancer":{"simple":"RANDOM"}}}`, host: "a.b.svc.cluster.local",
			want: `{"service":{"namespace":"b","name":"a","hostname":"a.b.svc.cluster.local"},"loadBalancer":{"policy":"RANDOM"}}`},
		{name: "LEAST_CONN is LEAST_REQUEST", spec: `{"host":"a","trafficPolicy":{"loadBalancer":{"simple":"LEAST_CONN"}}}`, host: "a.demo.svc.cluster.local",
			want: `{"service":{"namespace":"demo","name":"a","hostname":"a.demo.svc.cluster.local"},"loadBalancer":{"policy":"LEAST_REQUEST"}}`},
		{name: "deprecated consecutiveErrors", spec: `{"host":"r","trafficPolicy":{"outlierDetection":{"consecutiveErrors":7}}}`, host: "r.demo.svc.cluster.local",
			want: `{"service":{"namespace":"demo","name":"r","hostname":"r.demo.svc.cluster.local"},"outlierDetection":{"consecutive5xxErrors":7}}`},
		{name: "unsupported parts are ignored and reported", spec: `{"host":"r","subsets":[{"name":"v1","labels":{"v":"1"}}],"trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"},"loadBalancer":{"consistentHash":{"httpHeaderName":"x"}}}}`,
			host: "r.demo.svc.cluster.local", want: `{"service":{"namespace":"demo","name":"r","hostname":"r.demo.svc.cluster.local"}}`,
			fields: []string{"spec.subsets", "spec.trafficPolicy.tls", "spec.trafficPolicy.loadBalancer.consistentHash"}},
		{name: "wildcard host", spec: `{"host":"*.demo.svc.cluster.local"}`, fields: []string{"spec.host"}, fatal: true},
		{name: "external host", spec: `{"host":"example.com"}`, fields: []string{"spec.host"}, fatal: true},
		{name: "workload selector", spec: `{"host":"r","workloadSelector":{"matchLabels":{"a":"b"}}}`, fields: []string{"spec.workloadSelector"}, fatal: true},
		{name: "negative limit", spec: `{"host":"r","trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":-1}}}}`, host: "r.demo.svc.cluster.local",
			fields: []string{"spec.trafficPolicy.connectionPool.tcp.maxConnections"}, fatal: true},
		{name: "ejection over 100%", spec: `{"host":"r","trafficPolicy":{"outlierDetection":{"maxEjectionPercent":150}}}`, host: "r.demo.svc.cluster.local",
			fields: []string{"spec.trafficPolicy.outlierDetection.maxEjectionPercent"}, fatal: true},
		{name: "zero interval", spec: `{"host":"r","trafficPolicy":{"outlierDetection":{"interval":"0s"}}}`, host: "r.demo.svc.cluster.local",
			fields: []string{"spec.trafficPolicy.outlierDetection.interval"}, fatal: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			ts := testCfg.translateDestinationRule(destinationRule(t, "dr", tc.spec), &p)
			if ts.host != tc.host {
				t.Errorf("host = %q, want %q", ts.host, tc.host)
			}
			if !tc.fatal {
				if d := diff(msg(t, tc.want, &l7api.TrafficPolicy{}), ts.policy); d != "" {
					t.Errorf("policy (-want +got):\n%s", d)
				}
			}
			if p.fatal != tc.fatal {
				t.Errorf("fatal = %v, want %v", p.fatal, tc.fatal)
			}
			if d := diff(tc.fields, fields(&p)); d != "" {
				t.Errorf("problem fields (-want +got):\n%s", d)
			}
		})
	}
}
