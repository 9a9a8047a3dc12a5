package route

import (
	"math"
	"strings"
	"testing"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func TestCompileErrors(t *testing.T) {
	ok := func() *l7api.Route { return fwd("HTTPRoute/demo/reviews/0", nil, be("v1", 1)) }
	with := func(f func(r *l7api.Route)) []*l7api.RouteConfig {
		r := ok()
		f(r)
		return config(r)
	}
	full := func(p string) *l7api.PathRewrite {
		return &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplaceFullPath{ReplaceFullPath: p}}
	}
	repl := func(p string) *l7api.PathRewrite {
		return &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: p}}
	}
	const where = `routeconfig "reviews.demo.svc.cluster.local": route "HTTPRoute/demo/reviews/0": `
	tests := []struct {
		name string
		cfgs []*l7api.RouteConfig
		want string
	}{
		{"nil config", []*l7api.RouteConfig{nil}, "routeconfig [0]: nil"},
		{"no hostname", []*l7api.RouteConfig{{Service: &l7api.ServiceRef{Name: "x"}}}, "routeconfig [0]: service.hostname: empty"},
		{"duplicate hostname", append(config(ok()), config(ok())...), `routeconfig "reviews.demo.svc.cluster.local": service.hostname: a second RouteConfig`},
		{"route without name", config(fwd("", nil, be("v1", 1))), `routeconfig "reviews.demo.svc.cluster.local": routes[0].name: empty`},
		{"duplicate route name", config(ok(), ok()), where + "name: duplicate"},
		{"bad path regex", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_REGEX, Value: "/(unclosed"}}
		}), where + "match.path: regex: error parsing regexp"},
		{"relative prefix", with(func(r *l7api.Route) { r.Match = prefix("foo") }), where + `match.path: prefix "foo" must start with /`},
		{"prefix with query", with(func(r *l7api.Route) { r.Match = prefix("/foo?x") }), where + `match.path: prefix "/foo?x"`},
		{"bad escape in exact", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_EXACT, Value: "/a%zz"}}
		}), where + `match.path: exact "/a%zz": bad percent-encoding`},
		{"bad header regex", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{{Kind: l7api.HeaderMatch_REGEX, Name: "x", Value: "[z-a]"}}}
		}), where + `match.headers[0]: "x": regex`},
		{"bad header name", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{{Name: "bad name"}}}
		}), where + `match.headers[0]: invalid header name "bad name"`},
		{"empty query name", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{{Value: "1"}}}
		}), where + "match.query_params[0]: empty name"},
		{"bad query regex", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{QueryParams: []*l7api.HeaderMatch{{Kind: l7api.HeaderMatch_REGEX, Name: "q", Value: "*"}}}
		}), where + `match.query_params[0]: "q": regex`},
		{"no backends, no redirect", with(func(r *l7api.Route) { r.Backends = nil }), where + "backends: empty, and no redirect or direct_response"},
		{"backends and redirect", with(func(r *l7api.Route) { r.Redirect = &l7api.Redirect{} }), where + "backends: exactly one of"},
		{"backend without hostname", with(func(r *l7api.Route) { r.Backends[0].Service = nil }), where + "backends[0].service.hostname: empty"},
		{"backend port 0", with(func(r *l7api.Route) { r.Backends[0].Port = 0 }), where + "backends[0].port: 0"},
		{"backend port too big", with(func(r *l7api.Route) { r.Backends[0].Port = 70000 }), where + "backends[0].port: 70000"},
		{"weights overflow", with(func(r *l7api.Route) {
			r.Backends = []*l7api.WeightedBackend{be("a", math.MaxUint32), be("b", 1)}
		}), where + "backends[1].weight: weights overflow"},
		{"route port", with(func(r *l7api.Route) { r.Port = 1 << 17 }), where + "port: 131072 out of range"},
		{"bad request header value", with(func(r *l7api.Route) { r.RequestHeaders = []*l7api.HeaderModifier{set("x", "a\nb")} }), where + `request_headers[0]: invalid value for "x"`},
		{"bad response header name", with(func(r *l7api.Route) { r.ResponseHeaders = []*l7api.HeaderModifier{set("x y", "1")} }), where + `response_headers[0]: invalid header name "x y"`},
		{"remove host", with(func(r *l7api.Route) { r.RequestHeaders = []*l7api.HeaderModifier{remove("Host")} }), where + "request_headers[0]: the host header cannot be removed"},
		{"backend header op", with(func(r *l7api.Route) { r.Backends[0].RequestHeaders = []*l7api.HeaderModifier{{Op: 7, Name: "x"}} }), where + "backends[0].request_headers[0]: unknown op 7"},
		{"rewrite relative full path", with(func(r *l7api.Route) { r.Rewrite = &l7api.URLRewrite{Path: full("x")} }), where + `rewrite.path.replace_full_path "x" must start with /`},
		{"rewrite relative prefix", with(func(r *l7api.Route) { r.Match = prefix("/a"); r.Rewrite = &l7api.URLRewrite{Path: repl("x")} }), where + `rewrite.path.replace_prefix_match "x" must be empty or start with /`},
		{"prefix rewrite with exact match", with(func(r *l7api.Route) {
			r.Match = &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_EXACT, Value: "/a"}}
			r.Rewrite = &l7api.URLRewrite{Path: repl("/b")}
		}), where + "rewrite.path.replace_prefix_match needs a PathPrefix match"},
		{"rewrite hostname with port", with(func(r *l7api.Route) { r.Rewrite = &l7api.URLRewrite{Hostname: "h:80"} }), where + `rewrite.hostname: "h:80" must not carry a port`},
		{"rewrite hostname with slash", with(func(r *l7api.Route) { r.Rewrite = &l7api.URLRewrite{Hostname: "h/x"} }), where + `rewrite.hostname: "h/x" is not a host name`},
		{"redirect with rewrite", config(&l7api.Route{Name: "HTTPRoute/demo/reviews/0", Redirect: &l7api.Redirect{}, Rewrite: &l7api.URLRewrite{Hostname: "h"}}), where + "rewrite: cannot be combined with redirect"},
		{"redirect scheme", config(&l7api.Route{Name: "HTTPRoute/demo/reviews/0", Redirect: &l7api.Redirect{Scheme: "ftp"}}), where + `redirect.scheme "ftp"`},
		{"redirect status", config(&l7api.Route{Name: "HTTPRoute/demo/reviews/0", Redirect: &l7api.Redirect{StatusCode: 200}}), where + "redirect.status_code 200"},
		{"redirect port", config(&l7api.Route{Name: "HTTPRoute/demo/reviews/0", Redirect: &l7api.Redirect{Port: 65536}}), where + "redirect.port 65536"},
		{"redirect path", config(&l7api.Route{Name: "HTTPRoute/demo/reviews/0", Redirect: &l7api.Redirect{Path: full("")}}), where + "redirect.path.replace_full_path"},
		{"direct response status", config(&l7api.Route{Name: "HTTPRoute/demo/reviews/0", DirectResponse: &l7api.DirectResponse{}}), where + "direct_response.status: 0"},
		{"mirror percent", with(func(r *l7api.Route) { r.Mirrors = []*l7api.Mirror{{Service: ref("m"), Port: 80, Percent: 101}} }), where + "mirrors[0].percent: 101"},
		{"mirror NaN", with(func(r *l7api.Route) { r.Mirrors = []*l7api.Mirror{{Service: ref("m"), Port: 80, Percent: math.NaN()}} }), where + "mirrors[0].percent: NaN"},
		{"mirror port", with(func(r *l7api.Route) { r.Mirrors = []*l7api.Mirror{{Service: ref("m")}} }), where + "mirrors[0].port: 0"},
		{"too many mirrors", with(func(r *l7api.Route) {
			for range 65 {
				r.Mirrors = append(r.Mirrors, &l7api.Mirror{Service: ref("m"), Port: 80})
			}
		}), where + "mirrors: 65 mirrors"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.cfgs)
			if err == nil {
				t.Fatalf("Compile succeeded, want error %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %s\nwant prefix\n  %s", err, tc.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	cfgs := config(
		&l7api.Route{Name: "redirect", Match: prefix("/old/"), Redirect: &l7api.Redirect{Scheme: "HTTPS", Path: &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: ""}}}},
		&l7api.Route{Name: "respond", DirectResponse: &l7api.DirectResponse{Status: 503}},
		fwd("zero", nil, be("v1", 0)),
		&l7api.Route{Name: "ipv6 rewrite", Backends: []*l7api.WeightedBackend{be("v1", 1)}, Rewrite: &l7api.URLRewrite{Hostname: "fd00::1"}},
	)
	if _, err := Compile(cfgs); err != nil {
		t.Fatal(err)
	}
}
