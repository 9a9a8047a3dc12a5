package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func TestConnectionRecord(t *testing.T) {
	m := NewMetrics()
	var logs bytes.Buffer
	r := NewRecorder(m, slog.New(slog.NewJSONHandler(&logs, nil)))
	c := r.Start()
	c.Direction, c.Workload, c.Protocol = "outbound", "uid-1", "HBONE"
	c.SrcAddr = netip.MustParseAddrPort("10.0.0.1:40000")
	c.DstAddr = netip.MustParseAddrPort("10.96.0.1:80")
	c.HBONEAddr = netip.MustParseAddrPort("10.0.0.2:15008")
	c.Labels = Labels{Reporter: "source", Service: "echo.ns.svc.cluster.local", SecurityPolicy: "mutual_tls"}
	c.Src = Peer{Workload: "client", Namespace: "ns", Principal: "spiffe://cluster.local/ns/ns/sa/client"}
	c.SrcIdentity, c.DstIdentity = "spiffe://cluster.local/ns/ns/sa/client", "spiffe://cluster.local/ns/ns/sa/echo"
	c.Opened()
	if got := r.Connections(); len(got) != 1 || got[0].RemoteTarget != "10.0.0.2:15008" || got[0].Workload != "uid-1" ||
		got[0].SrcIdentity != c.SrcIdentity || got[0].DstIdentity != c.DstIdentity {
		t.Fatalf("connections = %+v", got)
	}
	c.AddSent(100)
	c.AddReceived(7)
	c.Closed(nil)
	if got := r.Connections(); len(got) != 0 {
		t.Fatalf("connection still listed: %+v", got)
	}
	f := r.Start()
	f.Direction = "inbound"
	f.Labels.Reporter = "destination"
	f.Failed("DENY", errors.New("denied"))

	for name, want := range map[string]float64{
		"istio_tcp_connections_opened_total": 1, "istio_tcp_connections_closed_total": 1,
		"istio_tcp_sent_bytes_total": 100, "istio_tcp_received_bytes_total": 7, "istio_tcp_connections_failed_total": 1,
	} {
		if got := sum(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := label(t, m, "istio_tcp_connections_failed_total", "response_flags"); got != "DENY" {
		t.Errorf("failed response_flags = %q", got)
	}
	if got := label(t, m, "istio_tcp_connections_opened_total", "source_workload_namespace"); got != "ns" {
		t.Errorf("opened source_workload_namespace = %q", got)
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("access log lines = %d:\n%s", len(lines), logs.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "connection complete" || rec["direction"] != "outbound" || rec["bytes_sent"] != float64(100) {
		t.Errorf("record %v", rec)
	}
	dst := rec["dst"].(map[string]any)
	if dst["hbone_addr"] != "10.0.0.2:15008" || dst["service"] != "echo.ns.svc.cluster.local" {
		t.Errorf("dst %v", dst)
	}
	if !strings.Contains(lines[1], `"error":"denied"`) {
		t.Errorf("failure record %s", lines[1])
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	c := r.Start()
	c.Opened()
	c.AddSent(1)
	c.Closed(nil)
	c.Failed("x", nil)
	if r.Connections() != nil {
		t.Fatal("nil recorder lists connections")
	}
}

func sum(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, mt := range mf.GetMetric() {
				v += mt.GetCounter().GetValue()
			}
		}
	}
	return v
}

func label(t *testing.T, m *Metrics, name, key string) string {
	t.Helper()
	mfs, _ := m.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				if lp.GetName() == key {
					return lp.GetValue()
				}
			}
		}
	}
	return ""
}
