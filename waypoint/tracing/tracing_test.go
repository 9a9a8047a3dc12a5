package tracing

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// collector is a fake OTLP trace collector.
type collector struct {
	collectorpb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (c *collector) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func TestExport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	ctx := context.Background()
	e, err := New(ctx, Config{Endpoint: ln.Addr().String(), Insecure: true, ServiceName: "waypoint.demo", BatchTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r, _ := http.NewRequest("GET", "http://echo/items", nil)
	r.Header.Set("Traceparent", in)
	r.Header.Set("Tracestate", "vendor=1")
	traceID, end := e.Start(r, "echo.demo.svc.cluster.local:80")
	end(503, nil)

	// An invalid parent starts a new trace and drops tracestate.
	r2, _ := http.NewRequest("GET", "http://echo/", nil)
	r2.Header.Set("Traceparent", "bogus")
	r2.Header.Set("Tracestate", "vendor=1")
	traceID2, end2 := e.Start(r2, "new")
	end2(200, nil)

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if traceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s, want the incoming one", traceID)
	}
	out := r.Header.Get("Traceparent")
	if !strings.HasPrefix(out, in[:36]) || out == in || r.Header.Get("Tracestate") != "vendor=1" {
		t.Errorf("upstream traceparent %q tracestate %q", out, r.Header.Get("Tracestate"))
	}
	if traceID2 == traceID || r2.Header.Get("Tracestate") != "" || !strings.Contains(r2.Header.Get("Traceparent"), traceID2) {
		t.Errorf("new trace: id %s headers %v", traceID2, r2.Header)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.spans) != 2 {
		t.Fatalf("exported %d spans, want 2", len(c.spans))
	}
	s := c.spans[0]
	if hex.EncodeToString(s.GetTraceId()) != traceID || hex.EncodeToString(s.GetParentSpanId()) != "00f067aa0ba902b7" ||
		!strings.Contains(out, hex.EncodeToString(s.GetSpanId())) || s.GetName() != "echo.demo.svc.cluster.local:80" ||
		s.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("span %v", s)
	}
}
