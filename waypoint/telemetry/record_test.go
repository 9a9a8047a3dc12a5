package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
)

func TestRecorderRequest(t *testing.T) {
	var buf bytes.Buffer
	m := NewMetrics()
	r := NewRecorder(m, NewJSONAccessLog(&buf, "access", nil, 0))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	q := r.StartRequest(Labels{
		Source:             Peer{Workload: "client", Namespace: "demo", Principal: "spiffe://cluster.local/ns/demo/sa/client"},
		DestinationService: "echo.demo.svc.cluster.local", RequestProtocol: "http",
	})
	now = now.Add(42 * time.Millisecond)
	q.Method, q.Path, q.Code, q.Route = "GET", "/items", 503, "HTTPRoute/demo/echo/0"
	q.Upstream = netip.MustParseAddrPort("10.0.1.1:8080")
	q.Labels.ResponseFlags, q.Err = "UF", errors.New("connect refused")
	r.Done(q)

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("access log is not one JSON record: %v\n%s", err, buf.String())
	}
	got := map[string]any{}
	for _, k := range []string{"msg", "method", "path", "response_code", "response_flags", "duration", "upstream_host", "route_name", "error"} {
		got[k] = rec[k]
	}
	want := map[string]any{"msg": "request complete", "method": "GET", "path": "/items", "response_code": 503.0,
		"response_flags": "UF", "duration": 42.0, "upstream_host": "10.0.1.1:8080", "route_name": "HTTPRoute/demo/echo/0",
		"error": "connect refused"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access log (-want +got):\n%s", diff)
	}

	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	var count float64
	for _, mf := range mfs {
		if mf.GetName() == "istio_requests_total" {
			mt := mf.GetMetric()[0]
			count = mt.GetCounter().GetValue()
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
		}
	}
	if count != 1 || labels["reporter"] != "waypoint" || labels["response_code"] != "503" || labels["response_flags"] != "UF" ||
		labels["source_principal"] != "spiffe://cluster.local/ns/demo/sa/client" || labels["destination_workload"] != "unknown" ||
		labels["grpc_response_status"] != "-" || labels["connection_security_policy"] != "mutual_tls" {
		t.Errorf("istio_requests_total = %v %v", count, labels)
	}
}

func TestPeerCache(t *testing.T) {
	var c PeerCache
	if c.Of(nil) != (Peer{}) {
		t.Error("nil workload described")
	}
	w := &wds.Workload{Proto: &workloadapi.Workload{Name: "echo-1", Namespace: "demo", CanonicalName: "echo"},
		Identity: identity.ID{TrustDomain: "cluster.local", Namespace: "demo", ServiceAccount: "echo"}}
	want := PeerOf(w, "")
	for range 2 {
		if diff := cmp.Diff(want, c.Of(w)); diff != "" {
			t.Errorf("cached peer (-want +got):\n%s", diff)
		}
	}
	if n := testing.AllocsPerRun(50, func() { _ = c.Of(w) }); n != 0 {
		t.Errorf("cached lookup allocates %.0f times", n)
	}
}
