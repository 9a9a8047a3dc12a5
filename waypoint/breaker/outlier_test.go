package breaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func endpoints(n int) []netip.AddrPort {
	eps := make([]netip.AddrPort, n)
	for i := range eps {
		eps[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 8080)
	}
	return eps
}

func newOutliers(t *testing.T, od *l7api.OutlierDetection, n int) (*Outliers, *fakeClock, []netip.AddrPort) {
	t.Helper()
	clk := newFakeClock()
	o := NewOutliers(od, WithClock(clk.Now))
	eps := endpoints(n)
	o.SetEndpoints(eps)
	return o, clk, eps
}

func report(o *Outliers, ep netip.AddrPort, status, n int) {
	for range n {
		o.Report(ep, status, nil)
	}
}

var errConnect = errors.New("connect: connection refused")

func TestOutlierConsecutive5xx(t *testing.T) {
	o, _, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 3, MaxEjectionPercent: 100}, 2)
	ep := eps[0]
	report(o, ep, 500, 2)
	o.Report(ep, 200, nil) // resets
	report(o, ep, 503, 2)
	if o.Ejected(ep) {
		t.Fatal("ejected after 2 consecutive 5xx, threshold 3")
	}
	o.Report(ep, 0, errConnect) // an error counts as a 5xx
	if !o.Ejected(ep) {
		t.Fatal("not ejected after 3 consecutive 5xx")
	}
	if o.Ejected(eps[1]) {
		t.Error("healthy endpoint ejected")
	}
	report(o, eps[1], 404, 10) // 4xx are not errors
	if o.Ejected(eps[1]) {
		t.Error("endpoint ejected for 404s")
	}
}

func TestOutlierIgnoresLocalErrors(t *testing.T) {
	o, _, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 2, MaxEjectionPercent: 100}, 1)
	ep := eps[0]
	for range 5 {
		o.Report(ep, 0, &OverflowError{Limit: MaxConnections, Max: 1})
		o.Report(ep, 0, fmt.Errorf("request: %w", context.Canceled))
	}
	if o.Ejected(ep) {
		t.Error("ejected for overflow and cancellation, which are not the endpoint's errors")
	}
}

func TestOutlierConsecutiveGatewayErrors(t *testing.T) {
	o, _, eps := newOutliers(t, &l7api.OutlierDetection{ConsecutiveGatewayErrors: 3, MaxEjectionPercent: 100}, 1)
	ep := eps[0]
	report(o, ep, 502, 2)
	o.Report(ep, 500, nil) // a non-gateway 5xx resets the gateway count
	report(o, ep, 504, 2)
	if o.Ejected(ep) {
		t.Fatal("ejected after 2 consecutive gateway errors, threshold 3")
	}
	o.Report(ep, 0, errConnect)
	if !o.Ejected(ep) {
		t.Fatal("not ejected after 3 consecutive gateway errors")
	}
}

func TestOutlierEjectionTimeGrowsAndDecays(t *testing.T) {
	base := 30 * time.Second
	o, clk, eps := newOutliers(t, &l7api.OutlierDetection{
		Consecutive_5XxErrors: 1, BaseEjectionTime: durationpb.New(base),
		Interval: durationpb.New(10 * time.Second), MaxEjectionPercent: 100,
	}, 1)
	ep := eps[0]
	ejectedFor := func() time.Duration {
		t.Helper()
		if !o.Ejected(ep) {
			t.Fatal("not ejected")
		}
		var d time.Duration
		for o.Ejected(ep) {
			clk.Advance(time.Second)
			d += time.Second
		}
		return d
	}
	o.Report(ep, 500, nil)
	if got := ejectedFor(); got != base {
		t.Fatalf("first ejection lasted %v, want %v", got, base)
	}
	o.Report(ep, 500, nil)
	if got := ejectedFor(); got != 2*base {
		t.Fatalf("second ejection lasted %v, want %v", got, 2*base)
	}
	o.Report(ep, 503, nil) // reports while ejected would be ignored; here it is back
	if got := ejectedFor(); got != 3*base {
		t.Fatalf("third ejection lasted %v, want %v", got, 3*base)
	}
	// Two calm intervals take the count from 3 to 1: the next ejection is
	// 2 × base.
	clk.Advance(20 * time.Second)
	o.Report(ep, 200, nil)
	o.Report(ep, 500, nil)
	if got := ejectedFor(); got != 2*base {
		t.Fatalf("ejection after two calm intervals lasted %v, want %v", got, 2*base)
	}
}

func TestOutlierReportsWhileEjectedAreIgnored(t *testing.T) {
	o, clk, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 2, MaxEjectionPercent: 100}, 1)
	ep := eps[0]
	report(o, ep, 500, 2)
	report(o, ep, 500, 5) // in-flight requests finishing
	clk.Advance(DefaultBaseEjectionTime)
	if o.Ejected(ep) {
		t.Fatal("still ejected after base_ejection_time")
	}
	o.Report(ep, 500, nil)
	if o.Ejected(ep) {
		t.Error("ejected after one error: errors during the ejection were counted")
	}
}

func TestOutlierEjectionTimeIsCapped(t *testing.T) {
	o, clk, eps := newOutliers(t, &l7api.OutlierDetection{
		Consecutive_5XxErrors: 1, BaseEjectionTime: durationpb.New(100 * time.Second), MaxEjectionPercent: 100,
	}, 1)
	ep := eps[0]
	for range 5 {
		o.Report(ep, 500, nil)
		clk.Advance(MaxEjectionTime - time.Second)
		if !o.Ejected(ep) {
			continue // early ejections are shorter
		}
		clk.Advance(time.Second)
		if o.Ejected(ep) {
			t.Fatalf("ejected longer than MaxEjectionTime")
		}
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		name       string
		endpoints  int
		maxPercent uint32
		want       int
	}{
		{"20% of 10", 10, 20, 2},
		{"default 10% of 10", 10, 0, 1},
		{"10% of 3 still ejects one", 3, 10, 1},
		{"100% of 4", 4, 100, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 1, MaxEjectionPercent: tt.maxPercent}, tt.endpoints)
			for _, ep := range eps {
				o.Report(ep, 500, nil)
			}
			if got := o.EjectedCount(); got != tt.want {
				t.Errorf("EjectedCount = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOutlierUnejectionMakesRoom(t *testing.T) {
	o, clk, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 1, MaxEjectionPercent: 50}, 2)
	o.Report(eps[0], 500, nil)
	o.Report(eps[1], 500, nil)
	if !o.Ejected(eps[0]) || o.Ejected(eps[1]) {
		t.Fatal("want only the first endpoint ejected at 50% of 2")
	}
	clk.Advance(DefaultBaseEjectionTime)
	o.Report(eps[1], 500, nil)
	if o.Ejected(eps[0]) || !o.Ejected(eps[1]) {
		t.Error("after the first returned, the second should be ejectable")
	}
}

func TestOutlierSetEndpointsDropsState(t *testing.T) {
	o, _, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 1, MaxEjectionPercent: 100}, 3)
	o.Report(eps[0], 500, nil)
	o.SetEndpoints(eps[1:])
	if o.Ejected(eps[0]) {
		t.Error("removed endpoint still ejected")
	}
	if got := len(o.endpoints); got != 0 {
		t.Errorf("%d endpoint states kept, want 0", got)
	}
}

func TestOutliersDisabled(t *testing.T) {
	o := NewOutliers(nil)
	o.Report(endpoints(1)[0], 500, nil)
	o.SetEndpoints(endpoints(2))
	if o.Ejected(endpoints(1)[0]) || o.EjectedCount() != 0 {
		t.Error("nil Outliers ejected something")
	}
	// Zero thresholds disable their count.
	o2, _, eps := newOutliers(t, &l7api.OutlierDetection{MaxEjectionPercent: 100}, 1)
	report(o2, eps[0], 502, 100)
	if o2.Ejected(eps[0]) {
		t.Error("ejected with both thresholds zero")
	}
}

func TestOutlierConcurrent(t *testing.T) {
	o, clk, eps := newOutliers(t, &l7api.OutlierDetection{Consecutive_5XxErrors: 3, MaxEjectionPercent: 30}, 10)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				ep := eps[(g+i)%len(eps)]
				status := 200
				if i%2 == 0 {
					status = 503
				}
				o.Report(ep, status, nil)
				o.Ejected(ep)
				if i%100 == 0 {
					clk.Advance(time.Second)
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if n := o.EjectedCount(); n > 3 {
				t.Errorf("%d ejected, max 30%% of 10", n)
				return
			}
		}
	})
	wg.Wait()
}
