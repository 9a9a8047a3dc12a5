package backend

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/waypoint/breaker"
)

func TestRegistryKeepsStateWhilePolicyIsEqual(t *testing.T) {
	r := NewRegistry()
	tp := &l7api.TrafficPolicy{ConnectionPool: &l7api.ConnectionPool{MaxRequests: 1}}
	a := r.Get("echo.demo.svc.cluster.local", tp)
	if b := r.Get("ECHO.demo.svc.cluster.local", proto.Clone(tp).(*l7api.TrafficPolicy)); b != a {
		t.Error("an equal policy from a new configuration replaced the backend state")
	}
	if b := r.Get("echo.demo.svc.cluster.local", &l7api.TrafficPolicy{ConnectionPool: &l7api.ConnectionPool{MaxRequests: 2}}); b == a {
		t.Error("a changed policy kept the old backend state")
	}
	if b := r.Get("other.demo.svc.cluster.local", nil); b == nil || b.Balancer == nil || b.Pool == nil || b.HTTP1 == nil {
		t.Errorf("backend without a policy: %+v", b)
	}
}

func TestRequestPools(t *testing.T) {
	b := NewRegistry().Get("echo.demo.svc.cluster.local", &l7api.TrafficPolicy{
		ConnectionPool: &l7api.ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h1 := b.Requests(false)
	release, err := h1.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		r, err := h1.Acquire(ctx) // queued behind the first
		if err == nil {
			r()
		}
		waited <- err
	}()
	for {
		if _, _, pending := h1.Stats(); pending == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var oe *breaker.OverflowError
	if _, err := h1.Acquire(ctx); !errors.As(err, &oe) || oe.Limit != breaker.MaxPendingRequests {
		t.Errorf("third HTTP/1.1 request: %v, want a max_pending_requests overflow", err)
	}
	// HTTP/2 requests share connections: max_connections does not bound them.
	if r, err := b.Requests(true).Acquire(ctx); err != nil {
		t.Errorf("HTTP/2 request: %v", err)
	} else {
		r()
	}
	if got := NewRegistry().Stats(); len(got) != 0 {
		t.Errorf("empty registry stats %v", got)
	}
	release()
	if err := <-waited; err != nil {
		t.Errorf("queued request: %v, want it served once the first ended", err)
	}
}

func TestSetEndpointsIsTheEjectionBase(t *testing.T) {
	ep := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	port80 := []netip.AddrPort{ep("10.0.1.1:8080"), ep("10.0.1.2:8080")}
	port90 := []netip.AddrPort{ep("10.0.1.1:9090"), ep("10.0.1.2:9090")}
	b := NewRegistry().Get("echo.demo.svc.cluster.local", &l7api.TrafficPolicy{OutlierDetection: &l7api.OutlierDetection{
		Consecutive_5XxErrors: 1, MaxEjectionPercent: 50, BaseEjectionTime: durationpb.New(time.Hour)}})
	b.SetEndpoints(80, port80)
	b.SetEndpoints(90, port90)
	b.SetEndpoints(80, slices.Clone(port80)) // unchanged: keeps both lists
	fail := errors.New("refused")
	b.Outliers.Report(port80[0], 0, fail)
	b.Outliers.Report(port90[0], 0, fail)
	// 50% of the four endpoints of both ports: both failing ones.
	if got := b.Outliers.EjectedCount(); got != 2 {
		t.Errorf("%d ejected, want 2 (50%% of 4)", got)
	}
	if n := testing.AllocsPerRun(100, func() { b.SetEndpoints(80, port80) }); n != 0 {
		t.Errorf("an unchanged list allocates %v times", n)
	}
}
