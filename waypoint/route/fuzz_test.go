package route

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// FuzzMatch runs random paths, queries and headers through a table with
// every match kind, a prefix rewrite and a redirect: Match and
// ApplyRequest must not panic, rewritten paths start with "/", and
// redirect targets are absolute URLs that parse.
func FuzzMatch(f *testing.F) {
	f.Add("/api/v1/items", "v=2&x=%41", "jason", "example.com:8080")
	f.Add("/old/", "", "", "")
	f.Add("", "q=%zz&&=&", "a\x00", "[fd00::1]:80")
	f.Add("/old", "a+b=c+d", "", "h")
	rewrite := fwd("rewrite", &l7api.RouteMatch{
		Path:        &l7api.PathMatch{Value: "/api/"},
		QueryParams: []*l7api.HeaderMatch{{Kind: l7api.HeaderMatch_REGEX, Name: "v", Value: "[0-9]+"}},
	}, be("v1", 1))
	rewrite.Rewrite = &l7api.URLRewrite{Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: ""}}}
	tb := mustCompile(f, config(
		rewrite,
		fwd("header", &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{{Name: "x-user", Value: "jason"}}}, be("v2", 1), be("v3", 1)),
		&l7api.Route{Name: "redirect", Match: prefix("/old"), Redirect: &l7api.Redirect{Scheme: "https",
			Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: "/new"}}}},
		fwd("regex", &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_REGEX, Value: "/r/.*"}}, be("v1", 1)),
	))
	f.Fuzz(func(t *testing.T, path, query, user, hostHeader string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: query},
			Header: http.Header{"X-User": {user}}, Host: hostHeader}
		d := tb.Match(host, 9080, r)
		switch d.Action {
		case Redirect:
			if !strings.HasPrefix(d.Location, "https://") {
				t.Fatalf("Location %q", d.Location)
			}
		case Forward:
			d.ApplyRequest(r)
			if d.Route == "rewrite" && !strings.HasPrefix(r.URL.EscapedPath(), "/") {
				t.Fatalf("rewritten path %q", r.URL.EscapedPath())
			}
		}
	})
}
