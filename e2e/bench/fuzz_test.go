package bench

import (
	"math"
	"strings"
	"testing"
)

// FuzzParseBenchLine feeds arbitrary go test output to the BenchmarkScale
// parser and the row builder: no panics, no NaN in a row that has values.
func FuzzParseBenchLine(f *testing.F) {
	f.Add("BenchmarkScale-2 \t 1\t 9583641174 ns/op\t 78.88 rss-MB\t 3.360 x-less-rss-than-istiod\n")
	f.Add("BenchmarkScale\nBenchmarkScale-2 1 NaN rss-MB 0 x-less-rss-than-istiod")
	f.Add("")
	f.Fuzz(func(t *testing.T, out string) {
		m := parseBenchLine(out, "BenchmarkScale")
		for _, r := range scaleRows(5000, m) {
			if len(r.Subject.Values) > 0 && math.IsNaN(r.Subject.Median) {
				t.Fatalf("row %+v has values but a NaN median", r)
			}
		}
	})
}

// FuzzMTLSSources feeds arbitrary metrics pages to the ztunnel metrics
// reader behind the enrolment scenario: no panics, no hang, and every
// counted workload comes from a line of the namespace asked for.
func FuzzMTLSSources(f *testing.F) {
	f.Add(`istio_tcp_connections_opened_total{reporter="source",source_workload="e-001",source_workload_namespace="bench-enroll",connection_security_policy="mutual_tls"} 2`)
	f.Add(`istio_tcp_connections_opened_total{reporter="source",source_workload="a\"b",source_workload_namespace="bench-enroll",connection_security_policy="mutual_tls"} NaN`)
	f.Add(`istio_tcp_connections_opened_total{a=b,="",reporter=` + "\n" + `istio_tcp_connections_opened_total{} 1`)
	f.Fuzz(func(t *testing.T, page string) {
		for w := range mtlsSources([]byte(page), "bench-enroll") {
			if !strings.Contains(page, w) && !strings.Contains(page, `\`) {
				t.Fatalf("workload %q is not in the page", w)
			}
		}
	})
}
