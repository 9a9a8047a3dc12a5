package route

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

const host = "reviews.demo.svc.cluster.local"

func ref(name string) *l7api.ServiceRef {
	return &l7api.ServiceRef{Namespace: "demo", Name: name, Hostname: name + ".demo.svc.cluster.local"}
}

func be(name string, weight uint32) *l7api.WeightedBackend {
	return &l7api.WeightedBackend{Service: ref(name), Port: 9080, Weight: weight}
}

func prefix(p string) *l7api.RouteMatch {
	return &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_PREFIX, Value: p}}
}

func fwd(name string, m *l7api.RouteMatch, backends ...*l7api.WeightedBackend) *l7api.Route {
	return &l7api.Route{Name: name, Match: m, Backends: backends}
}

func config(routes ...*l7api.Route) []*l7api.RouteConfig {
	return []*l7api.RouteConfig{{Service: ref("reviews"), Routes: routes}}
}

func mustCompile(t testing.TB, cfgs []*l7api.RouteConfig, opts ...Option) *Table {
	t.Helper()
	tb, err := Compile(cfgs, opts...)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return tb
}

// req builds a request; hdr holds name, value pairs.
func req(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// lockedRand makes a seeded *rand.Rand safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (l *lockedRand) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Uint64()
}

// fixedRand returns its values in turn, repeating the last.
type fixedRand struct{ vals []uint64 }

func (f *fixedRand) Uint64() uint64 {
	v := f.vals[0]
	if len(f.vals) > 1 {
		f.vals = f.vals[1:]
	}
	return v
}

func TestPathMatch(t *testing.T) {
	tests := []struct {
		kind  l7api.PathMatch_Kind
		value string
		path  string
		want  bool
	}{
		{l7api.PathMatch_PREFIX, "/", "/", true},
		{l7api.PathMatch_PREFIX, "/", "/anything/at/all", true},
		{l7api.PathMatch_PREFIX, "/foo", "/foo", true},
		{l7api.PathMatch_PREFIX, "/foo", "/foo/", true},
		{l7api.PathMatch_PREFIX, "/foo", "/foo/bar", true},
		{l7api.PathMatch_PREFIX, "/foo", "/foobar", false},
		{l7api.PathMatch_PREFIX, "/foo", "/fo", false},
		{l7api.PathMatch_PREFIX, "/foo", "/Foo", false},
		{l7api.PathMatch_PREFIX, "/foo/", "/foo", true},
		{l7api.PathMatch_PREFIX, "/foo/", "/foo/bar", true},
		{l7api.PathMatch_PREFIX, "/foo/", "/foobar", false},
		{l7api.PathMatch_PREFIX, "/foo/bar", "/foo/bar/baz", true},
		{l7api.PathMatch_PREFIX, "/foo/bar", "/foo/barbaz", false},
		{l7api.PathMatch_PREFIX, "/foo", "/foo%2Fbar", false},
		{l7api.PathMatch_PREFIX, "/foo", "/foo?x=1", true},
		{l7api.PathMatch_EXACT, "/foo", "/foo", true},
		{l7api.PathMatch_EXACT, "/foo", "/foo/", false},
		{l7api.PathMatch_EXACT, "/foo", "/foo/bar", false},
		{l7api.PathMatch_EXACT, "/foo", "/foo?q=1", true},
		{l7api.PathMatch_EXACT, "/a%20b", "/a%20b", true},
		{l7api.PathMatch_REGEX, "/api/v[0-9]+/.*", "/api/v2/users", true},
		{l7api.PathMatch_REGEX, "/api/v[0-9]+", "/api/v2/users", false},
		{l7api.PathMatch_REGEX, "/api", "/x/api", false},
		{l7api.PathMatch_REGEX, "/a|/b", "/b", true},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String()+" "+tc.value+" "+tc.path, func(t *testing.T) {
			tb := mustCompile(t, config(fwd("r", &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: tc.kind, Value: tc.value}}, be("v2", 1))))
			d := tb.Match(host, 9080, req("GET", tc.path))
			if got := d.Route == "r"; got != tc.want {
				t.Errorf("matched = %v, want %v (decision %+v)", got, tc.want, d)
			}
		})
	}
}

func TestMatchConditions(t *testing.T) {
	hdr := func(kind l7api.HeaderMatch_Kind, name, value string) *l7api.HeaderMatch {
		return &l7api.HeaderMatch{Kind: kind, Name: name, Value: value}
	}
	tests := []struct {
		name  string
		match *l7api.RouteMatch
		port  uint32
		req   *http.Request
		want  bool
	}{
		{"empty match matches", &l7api.RouteMatch{}, 0, req("GET", "/x"), true},
		{"nil match matches", nil, 0, req("POST", "/x"), true},
		{"header exact", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "end-user", "jason")}}, 0, req("GET", "/", "End-User", "jason"), true},
		{"header name case-insensitive", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "END-USER", "jason")}}, 0, req("GET", "/", "end-user", "jason"), true},
		{"header value case-sensitive", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "end-user", "jason")}}, 0, req("GET", "/", "end-user", "Jason"), false},
		{"header absent", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "end-user", "jason")}}, 0, req("GET", "/"), false},
		{"header any value", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "x-v", "b")}}, 0, req("GET", "/", "x-v", "a", "x-v", "b"), true},
		{"header regex whole value", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(1, "x-v", "v[12]")}}, 0, req("GET", "/", "x-v", "v2"), true},
		{"header regex not partial", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(1, "x-v", "v[12]")}}, 0, req("GET", "/", "x-v", "v22"), false},
		{"headers AND", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "a", "1"), hdr(0, "b", "2")}}, 0, req("GET", "/", "a", "1"), false},
		{"headers AND both", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "a", "1"), hdr(0, "b", "2")}}, 0, req("GET", "/", "a", "1", "b", "2"), true},
		{"query exact", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "v", "2")}}, 0, req("GET", "/p?a=1&v=2"), true},
		{"query exact other value", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "v", "2")}}, 0, req("GET", "/p?v=3"), false},
		{"query name case-sensitive", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "v", "2")}}, 0, req("GET", "/p?V=2"), false},
		{"query repeated any", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "v", "2")}}, 0, req("GET", "/p?v=1&v=2"), true},
		{"query escaped value", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "q", "a b/c")}}, 0, req("GET", "/p?q=a+b%2Fc"), true},
		{"query escaped name", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "a b", "1")}}, 0, req("GET", "/p?a%20b=1"), true},
		{"query bad escape skipped", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "q", "1")}}, 0, req("GET", "/p?q=%zz&q=1"), true},
		{"query empty value", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "flag", "")}}, 0, req("GET", "/p?flag"), true},
		{"query regex", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(1, "id", "[0-9]+")}}, 0, req("GET", "/p?id=123"), true},
		{"query regex whole", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(1, "id", "[0-9]+")}}, 0, req("GET", "/p?id=12a"), false},
		{"query absent", &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{hdr(0, "v", "2")}}, 0, req("GET", "/p"), false},
		{"host header", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(1, "host", "example\\.com(:[0-9]+)?")}}, 0, req("GET", "http://example.com:8080/"), true},
		{"host header other", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{hdr(0, "host", "other.com")}}, 0, req("GET", "/"), false},
		{"method", &l7api.RouteMatch{Method: "POST"}, 0, req("POST", "/"), true},
		{"method other", &l7api.RouteMatch{Method: "POST"}, 0, req("GET", "/"), false},
		{"port", &l7api.RouteMatch{}, 9080, req("GET", "/"), true},
		{"port other", &l7api.RouteMatch{}, 8080, req("GET", "/"), false},
		{"all fields", &l7api.RouteMatch{Path: &l7api.PathMatch{Value: "/api"}, Method: "GET",
			Headers: []*l7api.HeaderMatch{hdr(0, "x", "1")}, QueryParams: []*l7api.HeaderMatch{hdr(0, "y", "2")}}, 9080,
			req("GET", "/api/z?y=2", "x", "1"), true},
		{"all fields but path", &l7api.RouteMatch{Path: &l7api.PathMatch{Value: "/api"}, Method: "GET",
			Headers: []*l7api.HeaderMatch{hdr(0, "x", "1")}, QueryParams: []*l7api.HeaderMatch{hdr(0, "y", "2")}}, 9080,
			req("GET", "/apix?y=2", "x", "1"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fwd("r", tc.match, be("v2", 1))
			r.Port = tc.port
			tb := mustCompile(t, config(r))
			d := tb.Match(host, 9080, tc.req)
			if got := d.Route == "r"; got != tc.want {
				t.Errorf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrecedenceIsListOrder(t *testing.T) {
	tb := mustCompile(t, config(
		fwd("exact", &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_EXACT, Value: "/api/v2"}}, be("exact", 1)),
		fwd("v2", &l7api.RouteMatch{Path: &l7api.PathMatch{Value: "/api"}, Headers: []*l7api.HeaderMatch{{Name: "x-version", Value: "v2"}}}, be("v2", 1)),
		fwd("api", prefix("/api"), be("api", 1)),
		fwd("all", prefix("/"), be("v1", 1)),
	))
	tests := []struct {
		req  *http.Request
		want string
	}{
		{req("GET", "/api/v2"), "exact"},
		{req("GET", "/api/v2", "x-version", "v2"), "exact"},
		{req("GET", "/api/v3", "x-version", "v2"), "v2"},
		{req("GET", "/api/v3"), "api"},
		{req("GET", "/other"), "all"},
	}
	for _, tc := range tests {
		if got := tb.Match(host, 9080, tc.req); got.Route != tc.want || got.Backend.Service.GetName() != tc.want && tc.want != "all" {
			t.Errorf("%s %v: route %q backend %q, want %q", tc.req.URL, tc.req.Header, got.Route, got.Backend.Service.GetName(), tc.want)
		}
	}
}

func TestDefaultRoute(t *testing.T) {
	tb := mustCompile(t, config(fwd("only-post", &l7api.RouteMatch{Method: "POST"}, be("v2", 1))))
	t.Run("no route matches", func(t *testing.T) {
		d := tb.Match(host, 8080, req("GET", "/"))
		if !d.Default() || d.Action != Forward || d.Backend.Service.GetName() != "reviews" || d.Backend.Port != 8080 {
			t.Errorf("got %+v, want the service itself on 8080", d)
		}
		r := req("GET", "/")
		d.ApplyRequest(r)
		h := http.Header{}
		d.ApplyResponse(h)
		if len(h) != 0 || r.URL.Path != "/" {
			t.Errorf("default route modified the request or response")
		}
	})
	t.Run("host compared case-insensitively", func(t *testing.T) {
		d := tb.Match(strings.ToUpper(host), 9080, req("POST", "/"))
		if d.Route != "only-post" {
			t.Errorf("route %q, want only-post", d.Route)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		d := tb.Match("other.demo.svc.cluster.local", 80, req("GET", "/"))
		want := Backend{Service: &l7api.ServiceRef{Hostname: "other.demo.svc.cluster.local"}, Port: 80}
		if !d.Default() || d.Backend.Service.GetHostname() != want.Service.Hostname || d.Backend.Port != 80 {
			t.Errorf("got %+v, want %+v", d.Backend, want)
		}
	})
	t.Run("nil table", func(t *testing.T) {
		var tb *Table
		d := tb.Match(host, 80, req("GET", "/"))
		if !d.Default() || d.Backend.Service.GetHostname() != host || d.Backend.Port != 80 {
			t.Errorf("got %+v", d)
		}
	})
	t.Run("empty table", func(t *testing.T) {
		d := mustCompile(t, nil).Match(host, 80, req("GET", "/"))
		if !d.Default() || d.Backend.Service.GetHostname() != host {
			t.Errorf("got %+v", d)
		}
	})
}

func TestWeightedSplit(t *testing.T) {
	tb := mustCompile(t, config(fwd("split", nil, be("v1", 90), be("v2", 10), be("v3", 0))), WithRand(newRand(1)))
	const n = 10000
	counts := map[string]int{}
	r := req("GET", "/")
	for range n {
		d := tb.Match(host, 9080, r)
		counts[d.Backend.Service.GetName()]++
	}
	if counts["v3"] != 0 {
		t.Errorf("weight-0 backend got %d requests", counts["v3"])
	}
	if got := float64(counts["v2"]) / n; got < 0.09 || got > 0.11 {
		t.Errorf("v2 share %.4f, want 0.10±0.01 (counts %v)", got, counts)
	}
	if got := float64(counts["v1"]) / n; got < 0.89 || got > 0.91 {
		t.Errorf("v1 share %.4f, want 0.90±0.01 (counts %v)", got, counts)
	}
}

func TestWeightedBoundaries(t *testing.T) {
	// Draws map to [0, total) by the high word of draw×total: with total
	// 100, a draw just below 0.9×2^64 is in v1, at 0.9×2^64 in v2.
	nine := 0.9
	cut := uint64(nine * (1 << 63) * 2)
	tests := []struct {
		draw uint64
		want string
	}{
		{0, "v1"},
		{cut - 1<<60, "v1"},
		{cut + 1<<58, "v2"},
		{^uint64(0), "v2"},
	}
	for _, tc := range tests {
		tb := mustCompile(t, config(fwd("split", nil, be("v1", 90), be("zero", 0), be("v2", 10))), WithRand(&fixedRand{vals: []uint64{tc.draw}}))
		if got := tb.Match(host, 9080, req("GET", "/")).Backend.Service.GetName(); got != tc.want {
			t.Errorf("draw %#x: got %s, want %s", tc.draw, got, tc.want)
		}
	}
}

func TestAllZeroWeightsAnswer500(t *testing.T) {
	tb := mustCompile(t, config(fwd("zero", nil, be("v1", 0), be("v2", 0))))
	d := tb.Match(host, 9080, req("GET", "/"))
	if d.Route != "zero" || d.Action != Respond || d.Status != 500 || d.Backend.Service != nil {
		t.Errorf("got %+v, want a 500 direct response", d)
	}
}

func TestRouteSettingsCarried(t *testing.T) {
	r := fwd("r", nil, be("v1", 1))
	r.Timeouts = &l7api.Timeouts{}
	r.Retry = &l7api.RetryPolicy{Attempts: 3}
	r.Fault = &l7api.FaultInjection{AbortStatus: 503}
	r.RateLimit = &l7api.RateLimit{MaxTokens: 5}
	d := mustCompile(t, config(r)).Match(host, 9080, req("GET", "/"))
	if d.Timeouts != r.Timeouts || d.Retry != r.Retry || d.Fault != r.Fault || d.RateLimit != r.RateLimit {
		t.Errorf("route settings not carried: %+v", d)
	}
}

func TestDirectResponse(t *testing.T) {
	r := &l7api.Route{Name: "teapot", DirectResponse: &l7api.DirectResponse{Status: 418, Body: "short and stout"},
		ResponseHeaders: []*l7api.HeaderModifier{{Name: "x-r", Value: "1"}}}
	d := mustCompile(t, config(r)).Match(host, 9080, req("GET", "/"))
	if d.Action != Respond || d.Status != 418 || d.Body != "short and stout" {
		t.Errorf("got %+v", d)
	}
	h := http.Header{}
	d.ApplyResponse(h)
	if diff := cmp.Diff(http.Header{"X-R": {"1"}}, h); diff != "" {
		t.Errorf("response headers (-want +got):\n%s", diff)
	}
}
