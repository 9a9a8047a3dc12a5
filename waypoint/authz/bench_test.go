package authz

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// fiftyPolicies builds 50 policies on the gateway and the reviews
// Service: 10 DENY that do not match the test request, 39 ALLOW for other
// sources or paths, and a last ALLOW (by name) that matches, so Evaluate
// walks every rule.
func fiftyPolicies() []*l7api.L7Policy {
	var ps []*l7api.L7Policy
	for i := range 10 {
		ps = append(ps, pol(fmt.Sprintf("deny-%02d", i), l7api.Action_DENY,
			&l7api.L7Rule{
				From: []*l7api.Source{{NotNamespaces: []string{"demo", "prod"}}, {IpBlocks: []string{fmt.Sprintf("192.168.%d.0/24", i)}}},
				To:   []*l7api.Operation{{Methods: []string{"DELETE"}, Paths: []string{fmt.Sprintf("/admin/%d/{**}", i)}}},
			}))
	}
	for i := range 39 {
		mk := pol
		if i%2 == 1 {
			mk = svcPol
		}
		ps = append(ps, mk(fmt.Sprintf("allow-%02d", i), l7api.Action_ALLOW,
			&l7api.L7Rule{
				From: []*l7api.Source{{Principals: []string{fmt.Sprintf("cluster.local/ns/demo/sa/client-%d", i)}}},
				To:   []*l7api.Operation{{Hosts: []string{"*.demo.svc.cluster.local"}, Methods: []string{"GET", "POST"}, Paths: []string{"/api/{*}/items"}}},
				When: []*l7api.Condition{{Key: "request.headers[x-user]", Values: []string{"jason"}}},
			},
			&l7api.L7Rule{To: []*l7api.Operation{{Paths: []string{fmt.Sprintf("/public/%d/*", i)}}}},
		))
	}
	ps = append(ps, svcPol("zz-productpage", l7api.Action_ALLOW, &l7api.L7Rule{
		From: []*l7api.Source{{Namespaces: []string{"demo"}, Principals: []string{"*/sa/productpage"}}},
		To:   []*l7api.Operation{{Methods: []string{"GET"}, Paths: []string{"/api/{**}"}, Ports: []uint32{9080}}},
		When: []*l7api.Condition{{Key: "request.headers[x-user]", Values: []string{"jas*"}}, {Key: "source.ip", Values: []string{"10.0.0.0/8"}}},
	}))
	return ps
}

func TestEvaluateFiftyPolicies(t *testing.T) {
	e := mustCompile(t, fiftyPolicies()...)
	r := request()
	v := e.Evaluate(r)
	if !v.Allow || v.Policy != "demo/zz-productpage" {
		t.Fatalf("got %+v, want allowed by demo/zz-productpage", v)
	}
	if n := testing.AllocsPerRun(200, func() { _ = e.Evaluate(r) }); n != 0 {
		t.Errorf("Evaluate allocates %v times", n)
	}
	denied := request(func(r *Request) { r.SourcePrincipal = "spiffe://cluster.local/ns/demo/sa/other" })
	if v := e.Evaluate(denied); v.Allow {
		t.Errorf("other principal allowed by %s", v.Policy)
	}
}

// TestConcurrentEvaluate runs Evaluate from many goroutines (meaningful
// under -race).
func TestConcurrentEvaluate(t *testing.T) {
	e := mustCompile(t, fiftyPolicies()...)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := request()
			for range 200 {
				if v := e.Evaluate(r); !v.Allow {
					t.Errorf("denied")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEvaluate measures Evaluate against 50 policies where the
// deciding ALLOW is the last one, beside a one-policy baseline in the same
// run; it reports the ratio as x-baseline.
func BenchmarkEvaluate(b *testing.B) {
	r := request()
	ps := fiftyPolicies()
	one := mustCompile(b, ps[len(ps)-1])
	fifty := mustCompile(b, ps...)
	measure := func(e *Engine) time.Duration {
		start := time.Now()
		for range 20000 {
			_ = e.Evaluate(r)
		}
		return time.Since(start)
	}
	b.Run("baseline-1-policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = one.Evaluate(r)
		}
	})
	b.Run("50-policies", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = fifty.Evaluate(r)
		}
		b.ReportMetric(float64(measure(fifty))/float64(measure(one)), "x-baseline")
	})
}
