package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/retry"
	"github.com/weftmesh/weft/waypoint/route"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// noMesh knows no services or workloads.
type noMesh struct{}

func (noMesh) Endpoints(*wds.Service, uint16, netip.Addr) []wds.Endpoint { return nil }
func (noMesh) ServicesByHostname(string) []*wds.Service                  { return nil }
func (noMesh) WorkloadByIP(wds.NetAddr) *wds.Workload                    { return nil }

// noDialer refuses every tunnel.
type noDialer struct{}

func (noDialer) Dial(context.Context, netip.AddrPort, http.Header) (net.Conn, error) {
	return nil, errors.New("no tunnels in this test")
}

// scriptedTransport answers attempt i with statuses[i] (0 for a connect
// failure) and records what the budget counted while each attempt was in
// flight.
type scriptedTransport struct {
	statuses []int
	budget   func() *retry.Budget
	during   func() // called inside each attempt

	mu       sync.Mutex
	inFlight []int64 // retries in flight, per attempt
}

func (s *scriptedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	n := len(s.inFlight)
	_, retries := s.budget().Active()
	s.inFlight = append(s.inFlight, retries)
	s.mu.Unlock()
	if s.during != nil {
		s.during()
	}
	if n >= len(s.statuses) || s.statuses[n] == 0 {
		return nil, retry.ConnectFailure(errors.New("refused"))
	}
	return &http.Response{StatusCode: s.statuses[n], Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestForwardRetryBudgetAccounting checks that a retry counts as in flight
// in its backend's budget while it is sent, and that every way forward
// ends gives the budget back.
func TestForwardRetryBudgetAccounting(t *testing.T) {
	tests := []struct {
		name      string
		attempts  uint32
		backoff   time.Duration
		statuses  []int
		cancelIn  time.Duration // cancel the request this long into the first attempt
		wantCode  int
		wantTries []int64 // retries in flight seen by each attempt
	}{
		{"retry succeeds", 2, time.Microsecond, []int{503, 200}, 0, 200, []int64{0, 1}},
		{"two retries", 3, time.Microsecond, []int{503, 502, 200}, 0, 200, []int64{0, 1, 1}},
		{"attempts exhausted", 1, time.Microsecond, []int{503, 503}, 0, 503, []int64{0, 1}},
		{"retry not retryable", 2, time.Microsecond, []int{503, 404}, 0, 404, []int64{0, 1}},
		{"connect failures", 2, time.Microsecond, []int{0, 0, 0}, 0, 503, []int64{0, 1, 1}},
		{"no retry needed", 2, time.Microsecond, []int{200}, 0, 200, []int64{0}},
		{"request ends in back-off", 2, time.Hour, []int{503, 200}, 20 * time.Millisecond, 0, []int64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy, err := retry.New(&l7api.RetryPolicy{Attempts: tt.attempts, RetryOn: []string{"5xx"},
				Backoff: durationpb.New(tt.backoff)})
			if err != nil {
				t.Fatal(err)
			}
			snap := &l7config.Snapshot{Retries: map[string]*retry.Policy{"r": policy}}
			reg := backend.NewRegistry()
			ep := netip.MustParseAddrPort("10.0.1.1:8080")
			tgt := target{hostname: ep.String(), pod: ep, port: ep.Port(), like: ep.Addr()}
			b := reg.Get(tgt.hostname, nil)
			budget := func() *retry.Budget { return b.Budget("r", policy) }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rt := &scriptedTransport{statuses: tt.statuses, budget: budget}
			if tt.cancelIn > 0 {
				rt.during = func() { time.AfterFunc(tt.cancelIn, cancel) }
			}
			h, err := NewHandler(Config{Mesh: noMesh{}, HTTP1: rt, HTTP2: rt, Dialer: noDialer{}, Backends: reg,
				Config: func() *l7config.Snapshot { return snap }, Recorder: telemetry.NewRecorder(telemetry.NewMetrics(), nil)})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			w := &countingWriter{ResponseWriter: rec}
			r := httptest.NewRequest(http.MethodGet, "http://echo/", nil).WithContext(ctx)
			h.forward(ctx, w, r, nil, tgt, b, route.Decision{Route: "r"}, snap, &telemetry.Request{})

			if diff := cmp.Diff(tt.wantTries, rt.inFlight); diff != "" {
				t.Errorf("retries in flight per attempt (-want +got):\n%s", diff)
			}
			if w.code != tt.wantCode {
				t.Errorf("status %d, want %d", w.code, tt.wantCode)
			}
			if active, retries := budget().Active(); active != 0 || retries != 0 {
				t.Errorf("after the request: %d active, %d retries in flight; want 0, 0", active, retries)
			}
		})
	}
}

func TestStreaming(t *testing.T) {
	tests := []struct {
		name   string
		length int64
		ct     string
		want   bool
	}{
		{"known length", 12, "text/plain", false},
		{"unknown length", -1, "text/plain", true},
		{"event stream", 100, "text/event-stream; charset=utf-8", true},
		{"grpc", 5, "application/grpc+proto", true},
		{"empty", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{ContentLength: tt.length, Header: http.Header{"Content-Type": {tt.ct}}}
			if got := streaming(resp); got != tt.want {
				t.Errorf("streaming = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestForwardedRequestCarriesTrailers: the trailers of a chunked request
// body reach the upstream, on the first attempt and on a replayed one.
func TestForwardedRequestCarriesTrailers(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b) + " " + r.Trailer.Get("X-Sum")
	}))
	defer srv.Close()
	ep := netip.MustParseAddrPort(srv.Listener.Addr().String())
	for _, replayed := range []bool{false, true} {
		in, err := http.ReadRequest(bufio.NewReader(strings.NewReader("POST /p HTTP/1.1\r\nHost: a\r\n" +
			"Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n")))
		if err != nil {
			t.Fatal(err)
		}
		var replay *retry.Body
		if replayed {
			replay = retry.NewBody(in.Body, 1<<10)
		}
		removeHopByHop(in.Header)
		for attempt := range 2 {
			out, err := outgoingShared(context.Background(), in, in.Header, ep, replay)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Transport.RoundTrip(out)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if g := <-got; g != "abc 42" {
				t.Errorf("replayed=%v attempt %d: upstream got %q, want %q", replayed, attempt, g, "abc 42")
			}
			if !replayed {
				break
			}
		}
	}
}
