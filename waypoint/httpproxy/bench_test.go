package httpproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// cannedTransport answers every request with a small fixed-length body.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, ContentLength: 12, Request: r,
		Header: http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"12"}},
		Body:   io.NopCloser(strings.NewReader("hello, mesh\n"))}, nil
}

// BenchmarkHandler runs the request pipeline alone (no network): trace
// propagation, telemetry with a JSON access log, balancing and the copy of
// a small response. Its allocs/op is the pipeline's own per-request
// allocation count, the figure to keep from creeping up.
//
//	go test -run='^$' -bench=Handler -benchmem ./waypoint/httpproxy
func BenchmarkHandler(b *testing.B) {
	snap := &l7config.Snapshot{}
	h, err := NewHandler(Config{Mesh: noMesh{}, HTTP1: cannedTransport{}, HTTP2: cannedTransport{}, Dialer: noDialer{},
		Backends: backend.NewRegistry(), Config: func() *l7config.Snapshot { return snap },
		Recorder: telemetry.NewRecorder(telemetry.NewMetrics(), telemetry.NewJSONAccessLog(io.Discard, "access", nil, 0))})
	if err != nil {
		b.Fatal(err)
	}
	ep := netip.MustParseAddrPort("10.0.1.1:8080")
	f := &flow.Flow{
		Source:      flow.Source{Principal: identity.ID{TrustDomain: "cluster.local", Namespace: "demo", ServiceAccount: "client"}},
		Destination: flow.Destination{Authority: ep, Port: ep.Port()},
	}
	ctx := flow.NewContext(b.Context(), f)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "http://echo/items", nil).WithContext(ctx)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
