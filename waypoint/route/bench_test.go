package route

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// hundredRoutes builds 100 routes: 98 prefix routes each with a header
// and a query match, then a weighted split on /api and a catch-all.
func hundredRoutes() []*l7api.RouteConfig {
	var routes []*l7api.Route
	for i := range 98 {
		routes = append(routes, fwd(fmt.Sprintf("HTTPRoute/demo/r%d/0", i), &l7api.RouteMatch{
			Path:        &l7api.PathMatch{Value: fmt.Sprintf("/svc%d", i)},
			Method:      "GET",
			Headers:     []*l7api.HeaderMatch{{Name: "x-tenant", Value: fmt.Sprintf("t%d", i)}},
			QueryParams: []*l7api.HeaderMatch{{Name: "v", Value: "2"}},
		}, be("v1", 1)))
	}
	routes = append(routes,
		fwd("HTTPRoute/demo/split/0", prefix("/api"), be("v1", 90), be("v2", 10)),
		fwd("HTTPRoute/demo/all/0", prefix("/"), be("v1", 1)))
	return config(routes...)
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tb := mustCompile(t, hundredRoutes())
	cases := map[string]*http.Request{
		"weighted split after 98 misses": req("GET", "/api/items?v=2", "X-Tenant", "none"),
		"header and query route":         req("GET", "/svc50/x?a=1&v=2", "X-Tenant", "t50"),
		"catch-all":                      req("GET", "/zzz"),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, func() { _ = tb.Match(host, 9080, r) }); n != 0 {
				t.Errorf("Match allocates %v times", n)
			}
		})
	}
	t.Run("default route of a known service", func(t *testing.T) {
		tb := mustCompile(t, config(fwd("post", &l7api.RouteMatch{Method: "POST"}, be("v1", 1))))
		r := req("GET", "/")
		if n := testing.AllocsPerRun(200, func() { _ = tb.Match(host, 9080, r) }); n != 0 {
			t.Errorf("Match allocates %v times", n)
		}
	})
}

// TestConcurrentMatch runs Match from many goroutines (meaningful under
// -race).
func TestConcurrentMatch(t *testing.T) {
	tb := mustCompile(t, hundredRoutes())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req("GET", fmt.Sprintf("/svc%d?v=2", g), "x-tenant", fmt.Sprintf("t%d", g))
			for range 200 {
				if d := tb.Match(host, 9080, r); d.Route != fmt.Sprintf("HTTPRoute/demo/r%d/0", g) {
					t.Errorf("route %q", d.Route)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkMatch measures Match over 100 routes where the request falls to
// the 99th route (98 misses, then a weighted pick), beside a baseline of a
// one-route table in the same run; it reports the ratio as x-baseline.
func BenchmarkMatch(b *testing.B) {
	r := req("GET", "/api/items?v=2", "X-Tenant", "none", "Accept", "*/*")
	one := mustCompile(b, config(fwd("HTTPRoute/demo/split/0", prefix("/api"), be("v1", 90), be("v2", 10))))
	hundred := mustCompile(b, hundredRoutes())
	measure := func(tb *Table) time.Duration {
		start := time.Now()
		for range 20000 {
			_ = tb.Match(host, 9080, r)
		}
		return time.Since(start)
	}
	b.Run("baseline-1-route", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = one.Match(host, 9080, r)
		}
	})
	b.Run("100-routes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = hundred.Match(host, 9080, r)
		}
		b.ReportMetric(float64(measure(hundred))/float64(measure(one)), "x-baseline")
	})
}
