package route

import (
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func set(name, value string) *l7api.HeaderModifier {
	return &l7api.HeaderModifier{Op: l7api.HeaderModifier_SET, Name: name, Value: value}
}
func add(name, value string) *l7api.HeaderModifier {
	return &l7api.HeaderModifier{Op: l7api.HeaderModifier_ADD, Name: name, Value: value}
}
func remove(name string) *l7api.HeaderModifier {
	return &l7api.HeaderModifier{Op: l7api.HeaderModifier_REMOVE, Name: name}
}

func TestHeaderModifiers(t *testing.T) {
	b := be("v2", 1)
	b.RequestHeaders = []*l7api.HeaderModifier{set("x-backend", "v2"), add("x-multi", "from-backend")}
	b.ResponseHeaders = []*l7api.HeaderModifier{add("x-served-by", "v2")}
	r := fwd("r", nil, b)
	r.RequestHeaders = []*l7api.HeaderModifier{
		set("X-Set", "new"), add("x-multi", "route"), remove("x-drop"), set("x-backend", "route"), set("host", "reviews.internal"),
	}
	r.ResponseHeaders = []*l7api.HeaderModifier{set("cache-control", "no-store"), remove("server"), add("x-served-by", "route")}
	d := mustCompile(t, config(r)).Match(host, 9080, req("GET", "/"))

	in := req("GET", "/", "x-set", "old", "x-set", "older", "x-multi", "client", "x-drop", "1", "x-keep", "1")
	d.ApplyRequest(in)
	want := http.Header{
		"X-Set":     {"new"},
		"X-Multi":   {"client", "route", "from-backend"},
		"X-Backend": {"v2"},
		"X-Keep":    {"1"},
	}
	if diff := cmp.Diff(want, in.Header); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}
	if in.Host != "reviews.internal" {
		t.Errorf("Host = %q, want reviews.internal", in.Host)
	}

	resp := http.Header{"Server": {"app"}, "Cache-Control": {"max-age=60"}}
	d.ApplyResponse(resp)
	wantResp := http.Header{"Cache-Control": {"no-store"}, "X-Served-By": {"route", "v2"}}
	if diff := cmp.Diff(wantResp, resp); diff != "" {
		t.Errorf("response headers (-want +got):\n%s", diff)
	}
	d.ApplyResponse(nil) // must not panic

	noHeader := req("GET", "/")
	noHeader.Header = nil
	d.ApplyRequest(noHeader)
	if noHeader.Header.Get("X-Set") != "new" {
		t.Errorf("request with nil Header not modified: %v", noHeader.Header)
	}
}

// TestReplacePrefixMatch follows Gateway API's table for
// HTTPPathModifier ReplacePrefixMatch.
func TestReplacePrefixMatch(t *testing.T) {
	tests := []struct {
		path, prefix, replacement, want string
	}{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/foo/bar/baz", "/foo/bar", "/x", "/x/baz"},
		{"/anything", "/", "/api", "/api/anything"},
		{"/", "/", "/api", "/api/"},
		{"/foo/a%2Fb", "/foo", "/x", "/x/a%2Fb"},
		{"/foo/bar?q=1", "/foo", "/xyz", "/xyz/bar"},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.prefix+" "+tc.replacement, func(t *testing.T) {
			r := fwd("r", prefix(tc.prefix), be("v1", 1))
			r.Rewrite = &l7api.URLRewrite{Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: tc.replacement}}}
			in := req("GET", tc.path)
			d := mustCompile(t, config(r)).Match(host, 9080, in)
			if d.Route != "r" {
				t.Fatalf("route did not match")
			}
			query := in.URL.RawQuery
			d.ApplyRequest(in)
			if got := in.URL.EscapedPath(); got != tc.want {
				t.Errorf("path = %q, want %q", got, tc.want)
			}
			if in.URL.RawQuery != query {
				t.Errorf("query changed to %q", in.URL.RawQuery)
			}
		})
	}
}

func TestURLRewrite(t *testing.T) {
	full := func(p string) *l7api.PathRewrite {
		return &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplaceFullPath{ReplaceFullPath: p}}
	}
	tests := []struct {
		name     string
		match    *l7api.RouteMatch
		rewrite  *l7api.URLRewrite
		target   string
		wantHost string
		wantPath string
		wantRaw  string
	}{
		{"full path", prefix("/foo"), &l7api.URLRewrite{Path: full("/bar")}, "/foo/x?a=1", "example.com", "/bar", ""},
		{"full path with exact match", &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_EXACT, Value: "/a"}}, &l7api.URLRewrite{Path: full("/b")}, "/a", "example.com", "/b", ""},
		{"full path keeps escapes", nil, &l7api.URLRewrite{Path: full("/a%2Fb")}, "/x", "example.com", "/a/b", "/a%2Fb"},
		{"hostname only", nil, &l7api.URLRewrite{Hostname: "ratings.demo.svc"}, "/x", "ratings.demo.svc", "/x", ""},
		{"hostname and prefix", prefix("/v1"), &l7api.URLRewrite{Hostname: "h",
			Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: "/v2"}}}, "/v1/items", "h", "/v2/items", ""},
		{"prefix rewrite without path match", nil, &l7api.URLRewrite{
			Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: "/api"}}}, "/items", "example.com", "/api/items", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fwd("r", tc.match, be("v1", 1))
			r.Rewrite = tc.rewrite
			in := req("GET", tc.target)
			d := mustCompile(t, config(r)).Match(host, 9080, in)
			d.ApplyRequest(in)
			if in.Host != tc.wantHost || in.URL.Path != tc.wantPath || in.URL.RawPath != tc.wantRaw {
				t.Errorf("host %q path %q raw %q, want %q %q %q", in.Host, in.URL.Path, in.URL.RawPath, tc.wantHost, tc.wantPath, tc.wantRaw)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	full := func(p string) *l7api.PathRewrite {
		return &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplaceFullPath{ReplaceFullPath: p}}
	}
	tests := []struct {
		name       string
		match      *l7api.RouteMatch
		redirect   *l7api.Redirect
		target     string
		port       uint16
		tls        bool
		wantStatus int
		wantLoc    string
	}{
		{"defaults keep everything", nil, &l7api.Redirect{}, "/a?x=1", 80, false, 302, "http://example.com/a?x=1"},
		{"listener port kept", nil, &l7api.Redirect{}, "/a", 8080, false, 302, "http://example.com:8080/a"},
		{"hostname", nil, &l7api.Redirect{Hostname: "new.example.com"}, "/a", 80, false, 302, "http://new.example.com/a"},
		{"scheme https implies 443", nil, &l7api.Redirect{Scheme: "https"}, "/a", 8080, false, 302, "https://example.com/a"},
		{"scheme http implies 80", nil, &l7api.Redirect{Scheme: "http"}, "/a", 8443, true, 302, "http://example.com/a"},
		{"explicit port", nil, &l7api.Redirect{Scheme: "https", Port: 8443}, "/a", 80, false, 302, "https://example.com:8443/a"},
		{"explicit port 80 elided for http", nil, &l7api.Redirect{Port: 80}, "/a", 8080, false, 302, "http://example.com/a"},
		{"explicit 443 on http kept", nil, &l7api.Redirect{Port: 443}, "/a", 80, false, 302, "http://example.com:443/a"},
		{"tls request keeps https", nil, &l7api.Redirect{Hostname: "h"}, "/a", 443, true, 302, "https://h/a"},
		{"status 301", nil, &l7api.Redirect{StatusCode: 301}, "/", 80, false, 301, "http://example.com/"},
		{"status 308", nil, &l7api.Redirect{StatusCode: 308}, "/", 80, false, 308, "http://example.com/"},
		{"full path", nil, &l7api.Redirect{Path: full("/new")}, "/old/x?q=1", 80, false, 302, "http://example.com/new?q=1"},
		{"prefix path", prefix("/old"), &l7api.Redirect{Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: "/new/"}}},
			"/old/x", 80, false, 302, "http://example.com/new/x"},
		{"ipv6 hostname", nil, &l7api.Redirect{Hostname: "fd00::1", Port: 8080}, "/", 80, false, 302, "http://[fd00::1]:8080/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &l7api.Route{Name: "r", Match: tc.match, Redirect: tc.redirect}
			in := req("GET", tc.target)
			if tc.tls {
				in.TLS = &tls.ConnectionState{}
			}
			d := mustCompile(t, config(r)).Match(host, tc.port, in)
			if d.Action != Redirect || d.Status != tc.wantStatus || d.Location != tc.wantLoc {
				t.Errorf("got %v %d %q, want redirect %d %q", d.Action, d.Status, d.Location, tc.wantStatus, tc.wantLoc)
			}
			before := in.URL.String()
			d.ApplyRequest(in)
			if in.URL.String() != before {
				t.Errorf("ApplyRequest changed a redirected request")
			}
		})
	}
	t.Run("no request host falls back to the service", func(t *testing.T) {
		in := req("GET", "/p")
		in.Host = ""
		d := mustCompile(t, config(&l7api.Route{Name: "r", Redirect: &l7api.Redirect{}})).Match(host, 80, in)
		if d.Location != "http://"+host+"/p" {
			t.Errorf("Location %q", d.Location)
		}
	})
	t.Run("host with port and ipv6 request host", func(t *testing.T) {
		d := mustCompile(t, config(&l7api.Route{Name: "r", Redirect: &l7api.Redirect{}})).Match(host, 80, req("GET", "http://[fd00::2]:80/p"))
		if d.Location != "http://[fd00::2]/p" {
			t.Errorf("Location %q", d.Location)
		}
	})
}

func TestMirrors(t *testing.T) {
	m := func(name string, percent float64) *l7api.Mirror {
		return &l7api.Mirror{Service: ref(name), Port: 9080, Percent: percent}
	}
	t.Run("zero and hundred percent always", func(t *testing.T) {
		r := fwd("r", nil, be("v1", 1))
		r.Mirrors = []*l7api.Mirror{m("shadow", 0), m("audit", 100)}
		d := mustCompile(t, config(r)).Match(host, 9080, req("GET", "/"))
		want := []Backend{{Service: r.Mirrors[0].Service, Port: 9080}, {Service: r.Mirrors[1].Service, Port: 9080}}
		if diff := cmp.Diff(want, d.Mirrors, cmp.Comparer(func(a, b *l7api.ServiceRef) bool { return a == b })); diff != "" {
			t.Errorf("mirrors (-want +got):\n%s", diff)
		}
	})
	t.Run("percent", func(t *testing.T) {
		r := fwd("r", nil, be("v1", 1))
		r.Mirrors = []*l7api.Mirror{m("always", 100), m("quarter", 25)}
		tb := mustCompile(t, config(r), WithRand(newRand(7)))
		counts := map[string]int{}
		const n = 10000
		for range n {
			for _, b := range tb.Match(host, 9080, req("GET", "/")).Mirrors {
				counts[b.Service.GetName()]++
			}
		}
		if counts["always"] != n {
			t.Errorf("always mirrored %d of %d", counts["always"], n)
		}
		if got := float64(counts["quarter"]) / n; got < 0.24 || got > 0.26 {
			t.Errorf("quarter share %.4f, want 0.25±0.01", got)
		}
	})
	t.Run("none drawn", func(t *testing.T) {
		r := fwd("r", nil, be("v1", 1))
		r.Mirrors = []*l7api.Mirror{m("rare", 1)}
		d := mustCompile(t, config(r), WithRand(&fixedRand{vals: []uint64{^uint64(0)}})).Match(host, 9080, req("GET", "/"))
		if d.Mirrors != nil {
			t.Errorf("mirrors %v, want none", d.Mirrors)
		}
	})
	t.Run("not for redirects", func(t *testing.T) {
		r := &l7api.Route{Name: "r", Redirect: &l7api.Redirect{}, Mirrors: []*l7api.Mirror{m("always", 100)}}
		if d := mustCompile(t, config(r)).Match(host, 9080, req("GET", "/")); d.Mirrors != nil {
			t.Errorf("redirect mirrored to %v", d.Mirrors)
		}
	})
}
