package authz

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

var gatewayTarget = &l7api.PolicyTarget{Kind: l7api.PolicyTarget_GATEWAY, Name: "waypoint"}

func pol(name string, action l7api.Action, rules ...*l7api.L7Rule) *l7api.L7Policy {
	return &l7api.L7Policy{Name: name, Namespace: "demo", Action: action, Targets: []*l7api.PolicyTarget{gatewayTarget}, Rules: rules}
}

func svcPol(name string, action l7api.Action, rules ...*l7api.L7Rule) *l7api.L7Policy {
	return &l7api.L7Policy{Name: name, Namespace: "demo", Action: action,
		Targets: []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_SERVICE, Name: "reviews"}}, Rules: rules}
}

func mustCompile(t testing.TB, ps ...*l7api.L7Policy) *Engine {
	t.Helper()
	e, err := Compile(ps)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return e
}

// request is productpage (demo) calling GET reviews:9080/api/v1/items.
func request(mod ...func(*Request)) *Request {
	r := &Request{
		Gateway:         "demo/waypoint",
		Service:         "demo/reviews",
		SourcePrincipal: "spiffe://cluster.local/ns/demo/sa/productpage",
		SourceIP:        netip.MustParseAddr("10.0.0.5"),
		DestinationIP:   netip.MustParseAddr("10.96.1.10"),
		Host:            "reviews.demo.svc.cluster.local:9080",
		Method:          "GET",
		Path:            "/api/v1/items?page=2",
		Port:            9080,
		Headers:         http.Header{"X-User": {"jason"}, "X-Env": {"prod", "canary"}},
	}
	for _, m := range mod {
		m(r)
	}
	return r
}

func from(s *l7api.Source) *l7api.L7Rule        { return &l7api.L7Rule{From: []*l7api.Source{s}} }
func to(o *l7api.Operation) *l7api.L7Rule       { return &l7api.L7Rule{To: []*l7api.Operation{o}} }
func when(cs ...*l7api.Condition) *l7api.L7Rule { return &l7api.L7Rule{When: cs} }
func cond(key string, values ...string) *l7api.Condition {
	return &l7api.Condition{Key: key, Values: values}
}
func notCond(key string, values ...string) *l7api.Condition {
	return &l7api.Condition{Key: key, NotValues: values}
}

func plaintext(r *Request) { r.SourcePrincipal = "" }
func path(p string) func(*Request) {
	return func(r *Request) { r.Path = p }
}

// TestRuleFields checks every rule field through an ALLOW policy: the
// request is allowed exactly when the rule matches.
func TestRuleFields(t *testing.T) {
	tests := []struct {
		name string
		rule *l7api.L7Rule
		req  *Request
		want bool
	}{
		{"empty rule matches all", &l7api.L7Rule{}, request(), true},

		{"principal exact", from(&l7api.Source{Principals: []string{"cluster.local/ns/demo/sa/productpage"}}), request(), true},
		{"principal with spiffe scheme", from(&l7api.Source{Principals: []string{"spiffe://cluster.local/ns/demo/sa/productpage"}}), request(), true},
		{"principal other", from(&l7api.Source{Principals: []string{"cluster.local/ns/demo/sa/ratings"}}), request(), false},
		{"principal prefix", from(&l7api.Source{Principals: []string{"cluster.local/ns/demo/*"}}), request(), true},
		{"principal suffix", from(&l7api.Source{Principals: []string{"*/sa/productpage"}}), request(), true},
		{"principal presence", from(&l7api.Source{Principals: []string{"*"}}), request(), true},
		{"principal presence plaintext", from(&l7api.Source{Principals: []string{"*"}}), request(plaintext), false},
		{"not principal matches", from(&l7api.Source{NotPrincipals: []string{"*/sa/productpage"}}), request(), false},
		{"not principal other", from(&l7api.Source{NotPrincipals: []string{"*/sa/ratings"}}), request(), true},
		{"not principal presence plaintext", from(&l7api.Source{NotPrincipals: []string{"*"}}), request(plaintext), true},
		{"principal case-sensitive", from(&l7api.Source{Principals: []string{"cluster.local/ns/demo/sa/ProductPage"}}), request(), false},

		{"namespace from principal", from(&l7api.Source{Namespaces: []string{"demo"}}), request(), true},
		{"namespace other", from(&l7api.Source{Namespaces: []string{"prod"}}), request(), false},
		{"namespace principal wins", from(&l7api.Source{Namespaces: []string{"prod"}}), request(func(r *Request) { r.SourceNamespace = "prod" }), false},
		{"namespace field when plaintext", from(&l7api.Source{Namespaces: []string{"prod"}}), request(plaintext, func(r *Request) { r.SourceNamespace = "prod" }), true},
		{"namespace absent", from(&l7api.Source{Namespaces: []string{"*"}}), request(plaintext), false},
		{"namespace prefix", from(&l7api.Source{Namespaces: []string{"de*"}}), request(), true},
		{"not namespace", from(&l7api.Source{NotNamespaces: []string{"demo"}}), request(), false},
		{"not namespace absent", from(&l7api.Source{NotNamespaces: []string{"demo"}}), request(plaintext), true},

		{"ip block cidr", from(&l7api.Source{IpBlocks: []string{"10.0.0.0/24"}}), request(), true},
		{"ip block address", from(&l7api.Source{IpBlocks: []string{"10.0.0.5"}}), request(), true},
		{"ip block other", from(&l7api.Source{IpBlocks: []string{"10.0.1.0/24"}}), request(), false},
		{"ip block unmaps 4in6", from(&l7api.Source{IpBlocks: []string{"10.0.0.0/8"}}), request(func(r *Request) { r.SourceIP = netip.MustParseAddr("::ffff:10.0.0.5") }), true},
		{"ip block v6", from(&l7api.Source{IpBlocks: []string{"fd00::/64"}}), request(func(r *Request) { r.SourceIP = netip.MustParseAddr("fd00::7") }), true},
		{"ip block unset ip", from(&l7api.Source{IpBlocks: []string{"0.0.0.0/0"}}), request(func(r *Request) { r.SourceIP = netip.Addr{} }), false},
		{"not ip block", from(&l7api.Source{NotIpBlocks: []string{"10.0.0.5/32"}}), request(), false},
		{"not ip block other", from(&l7api.Source{NotIpBlocks: []string{"192.168.0.0/16"}}), request(), true},

		{"source fields AND", from(&l7api.Source{Namespaces: []string{"demo"}, IpBlocks: []string{"192.168.0.0/16"}}), request(), false},
		{"sources OR", &l7api.L7Rule{From: []*l7api.Source{{Namespaces: []string{"prod"}}, {IpBlocks: []string{"10.0.0.0/8"}}}}, request(), true},

		{"host exact without port", to(&l7api.Operation{Hosts: []string{"reviews.demo.svc.cluster.local"}}), request(), true},
		{"host exact with port", to(&l7api.Operation{Hosts: []string{"reviews.demo.svc.cluster.local:9080"}}), request(), true},
		{"host other port", to(&l7api.Operation{Hosts: []string{"reviews.demo.svc.cluster.local:80"}}), request(), false},
		{"host case-insensitive", to(&l7api.Operation{Hosts: []string{"Reviews.DEMO.svc.cluster.local"}}), request(), true},
		{"host suffix", to(&l7api.Operation{Hosts: []string{"*.demo.svc.cluster.local"}}), request(), true},
		{"host prefix", to(&l7api.Operation{Hosts: []string{"reviews.*"}}), request(), true},
		{"host short name", to(&l7api.Operation{Hosts: []string{"reviews"}}), request(), false},
		{"host ipv6 with port", to(&l7api.Operation{Hosts: []string{"fd00::1"}}), request(func(r *Request) { r.Host = "[fd00::1]:9080" }), true},
		{"host absent", to(&l7api.Operation{Hosts: []string{"*"}}), request(func(r *Request) { r.Host = "" }), false},
		{"not host", to(&l7api.Operation{NotHosts: []string{"REVIEWS.demo.svc.cluster.local"}}), request(), false},
		{"not host other", to(&l7api.Operation{NotHosts: []string{"ratings.demo.svc.cluster.local"}}), request(), true},

		{"method", to(&l7api.Operation{Methods: []string{"GET", "HEAD"}}), request(), true},
		{"method other", to(&l7api.Operation{Methods: []string{"POST"}}), request(), false},
		{"method case-sensitive", to(&l7api.Operation{Methods: []string{"get"}}), request(), false},
		{"not method", to(&l7api.Operation{NotMethods: []string{"DELETE"}}), request(func(r *Request) { r.Method = "DELETE" }), false},

		{"path exact ignores query", to(&l7api.Operation{Paths: []string{"/api/v1/items"}}), request(), true},
		{"path exact other", to(&l7api.Operation{Paths: []string{"/api/v1"}}), request(), false},
		{"path prefix", to(&l7api.Operation{Paths: []string{"/api/*"}}), request(), true},
		{"path suffix", to(&l7api.Operation{Paths: []string{"*/items"}}), request(), true},
		{"path presence", to(&l7api.Operation{Paths: []string{"*"}}), request(), true},
		{"path normalised dots and slashes", to(&l7api.Operation{Paths: []string{"/admin"}}), request(path("//api/..//admin")), true},
		{"path dot segment keeps trailing slash", to(&l7api.Operation{Paths: []string{"/admin/"}}), request(path("/admin/sub/..")), true},
		{"path normalised unreserved escape", to(&l7api.Operation{Paths: []string{"/admin"}}), request(path("/%61dmin")), true},
		{"path encoded slash kept", to(&l7api.Operation{Paths: []string{"/a/b"}}), request(path("/a%2Fb")), false},
		{"path encoded slash exact", to(&l7api.Operation{Paths: []string{"/a%2Fb"}}), request(path("/a%2fb")), true},
		{"path template one segment", to(&l7api.Operation{Paths: []string{"/api/{*}/items"}}), request(), true},
		{"path template one not two", to(&l7api.Operation{Paths: []string{"/api/{*}"}}), request(), false},
		{"path template rest", to(&l7api.Operation{Paths: []string{"/api/{**}"}}), request(), true},
		{"path template rest other root", to(&l7api.Operation{Paths: []string{"/v1/{**}"}}), request(), false},
		{"path template after normalising", to(&l7api.Operation{Paths: []string{"/api/{*}/items"}}), request(path("/api/v2/../v1//items")), true},
		{"not path", to(&l7api.Operation{NotPaths: []string{"/api/{**}"}}), request(), false},
		{"not path other", to(&l7api.Operation{NotPaths: []string{"/admin/*"}}), request(), true},

		{"port", to(&l7api.Operation{Ports: []uint32{9080}}), request(), true},
		{"port other", to(&l7api.Operation{Ports: []uint32{80}}), request(), false},
		{"not port", to(&l7api.Operation{NotPorts: []uint32{9080}}), request(), false},

		{"operation fields AND", to(&l7api.Operation{Methods: []string{"GET"}, Paths: []string{"/admin"}}), request(), false},
		{"operations OR", &l7api.L7Rule{To: []*l7api.Operation{{Methods: []string{"POST"}}, {Paths: []string{"/api/*"}}}}, request(), true},
		{"from AND to", &l7api.L7Rule{From: []*l7api.Source{{Namespaces: []string{"demo"}}}, To: []*l7api.Operation{{Methods: []string{"POST"}}}}, request(), false},

		{"when header exact", when(cond("request.headers[x-user]", "jason")), request(), true},
		{"when header name case-insensitive", when(cond("request.headers[X-USER]", "jason")), request(), true},
		{"when header value case-sensitive", when(cond("request.headers[x-user]", "Jason")), request(), false},
		{"when header prefix", when(cond("request.headers[x-user]", "ja*")), request(), true},
		{"when header presence", when(cond("request.headers[x-user]", "*")), request(), true},
		{"when header presence absent", when(cond("request.headers[x-missing]", "*")), request(), false},
		{"when header presence empty value", when(cond("request.headers[x-empty]", "*")), request(func(r *Request) { r.Headers["X-Empty"] = []string{""} }), true},
		{"when header repeated any", when(cond("request.headers[x-env]", "canary")), request(), true},
		{"when header not values", when(notCond("request.headers[x-env]", "canary")), request(), false},
		{"when header not values absent", when(notCond("request.headers[x-missing]", "x")), request(), true},
		{"when header nil headers", when(cond("request.headers[x-user]", "jason")), request(func(r *Request) { r.Headers = nil }), false},
		{"when host header", when(cond("request.headers[host]", "reviews.*")), request(), true},
		{"when host header absent", when(cond("request.headers[host]", "*")), request(func(r *Request) { r.Host = "" }), false},
		{"path absolute-form", to(&l7api.Operation{NotPaths: []string{"/admin"}}), request(path("http://reviews/admin")), false},
		{"when source.ip", when(cond("source.ip", "10.0.0.0/8")), request(), true},
		{"when not source.ip", when(notCond("source.ip", "10.0.0.5")), request(), false},
		{"when source.namespace", when(cond("source.namespace", "demo")), request(), true},
		{"when source.principal", when(cond("source.principal", "cluster.local/ns/demo/sa/productpage")), request(), true},
		{"when source.principal scheme", when(cond("source.principal", "spiffe://cluster.local/ns/demo/*")), request(), true},
		{"when not source.principal", when(notCond("source.principal", "*")), request(plaintext), true},
		{"when destination.ip", when(cond("destination.ip", "10.96.0.0/12")), request(), true},
		{"when destination.ip other", when(cond("destination.ip", "10.0.0.0/24")), request(), false},
		{"when not destination.ip", when(notCond("destination.ip", "10.96.1.10")), request(), false},
		{"when destination.ip unset", when(cond("destination.ip", "0.0.0.0/0")), request(func(r *Request) { r.DestinationIP = netip.Addr{} }), false},
		{"when destination.port", when(cond("destination.port", "80", "9080")), request(), true},
		{"when not destination.port", when(notCond("destination.port", "9080")), request(), false},
		{"when AND", when(cond("request.headers[x-user]", "jason"), cond("destination.port", "80")), request(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, pol("allow", l7api.Action_ALLOW, tc.rule))
			v := e.Evaluate(tc.req)
			if v.Allow != tc.want {
				t.Errorf("Allow = %v, want %v (%+v)", v.Allow, tc.want, v)
			}
			// The same rule in a DENY policy denies exactly when it matches.
			e = mustCompile(t, pol("deny", l7api.Action_DENY, tc.rule))
			if v := e.Evaluate(tc.req); v.Allow == tc.want {
				t.Errorf("as DENY: Allow = %v, want %v", v.Allow, !tc.want)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	getOnly := to(&l7api.Operation{Methods: []string{"GET"}})
	deleteOnly := to(&l7api.Operation{Methods: []string{"DELETE"}})
	del := func(r *Request) { r.Method = "DELETE" }
	tests := []struct {
		name     string
		policies []*l7api.L7Policy
		req      *Request
		want     Verdict
	}{
		{"no policies allow", nil, request(), Verdict{Allow: true}},
		{"request without gateway or service", []*l7api.L7Policy{pol("none", l7api.Action_ALLOW)},
			request(func(r *Request) { r.Gateway, r.Service = "", "" }), Verdict{Allow: true}},
		{"policies for another gateway do not apply", []*l7api.L7Policy{
			{Name: "other", Namespace: "prod", Action: l7api.Action_ALLOW, Targets: []*l7api.PolicyTarget{gatewayTarget}},
		}, request(), Verdict{Allow: true}},
		{"policy without targets applies to nothing", []*l7api.L7Policy{{Name: "p", Namespace: "demo"}}, request(), Verdict{Allow: true}},
		{"allow matches", []*l7api.L7Policy{pol("get", l7api.Action_ALLOW, getOnly)}, request(), Verdict{Allow: true, Policy: "demo/get"}},
		{"allow applies, none match", []*l7api.L7Policy{pol("get", l7api.Action_ALLOW, getOnly)}, request(del), Verdict{}},
		{"allow with no rules denies all", []*l7api.L7Policy{pol("none", l7api.Action_ALLOW)}, request(), Verdict{}},
		{"deny with no rules denies nothing", []*l7api.L7Policy{pol("none", l7api.Action_DENY)}, request(), Verdict{Allow: true}},
		{"deny before allow", []*l7api.L7Policy{pol("get", l7api.Action_ALLOW, getOnly), pol("all", l7api.Action_DENY, &l7api.L7Rule{})},
			request(), Verdict{Policy: "demo/all"}},
		{"deny not matching, allow matching", []*l7api.L7Policy{pol("get", l7api.Action_ALLOW, getOnly), pol("del", l7api.Action_DENY, deleteOnly)},
			request(), Verdict{Allow: true, Policy: "demo/get"}},
		{"get allowed and delete denied", []*l7api.L7Policy{pol("get", l7api.Action_ALLOW, getOnly), pol("del", l7api.Action_DENY, deleteOnly)},
			request(del), Verdict{Policy: "demo/del"}},
		{"second allow matches", []*l7api.L7Policy{pol("a-get", l7api.Action_ALLOW, getOnly), pol("b-del", l7api.Action_ALLOW, deleteOnly)},
			request(del), Verdict{Allow: true, Policy: "demo/b-del"}},
		{"first matching allow by name", []*l7api.L7Policy{pol("z", l7api.Action_ALLOW, &l7api.L7Rule{}), pol("a", l7api.Action_ALLOW, &l7api.L7Rule{})},
			request(), Verdict{Allow: true, Policy: "demo/a"}},
		{"service target", []*l7api.L7Policy{svcPol("svc", l7api.Action_ALLOW, getOnly)}, request(del), Verdict{}},
		{"service target other service", []*l7api.L7Policy{svcPol("svc", l7api.Action_ALLOW, getOnly)},
			request(del, func(r *Request) { r.Service = "demo/ratings" }), Verdict{Allow: true}},
		{"gateway allow, service deny", []*l7api.L7Policy{pol("gw", l7api.Action_ALLOW, &l7api.L7Rule{}), svcPol("svc", l7api.Action_DENY, deleteOnly)},
			request(del), Verdict{Policy: "demo/svc"}},
		{"service allow satisfies applying allows", []*l7api.L7Policy{pol("gw", l7api.Action_ALLOW, getOnly), svcPol("svc", l7api.Action_ALLOW, deleteOnly)},
			request(del), Verdict{Allow: true, Policy: "demo/svc"}},
		{"gateway in another namespace by explicit target", []*l7api.L7Policy{{Name: "p", Namespace: "prod", Action: l7api.Action_DENY,
			Targets: []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_GATEWAY, Namespace: "demo", Name: "waypoint"}}, Rules: []*l7api.L7Rule{{}}}},
			request(), Verdict{Policy: "prod/p"}},
		{"dry-run deny never decides", []*l7api.L7Policy{{Name: "dry", Namespace: "demo", Action: l7api.Action_DENY, DryRun: true,
			Targets: []*l7api.PolicyTarget{gatewayTarget}, Rules: []*l7api.L7Rule{{}}}},
			request(), Verdict{Allow: true, DryRun: []string{"demo/dry"}}},
		{"dry-run allow does not apply", []*l7api.L7Policy{{Name: "dry", Namespace: "demo", Action: l7api.Action_ALLOW, DryRun: true,
			Targets: []*l7api.PolicyTarget{gatewayTarget}, Rules: []*l7api.L7Rule{getOnly}}},
			request(del), Verdict{Allow: true}},
		{"dry-run allow recorded", []*l7api.L7Policy{{Name: "dry", Namespace: "demo", Action: l7api.Action_ALLOW, DryRun: true,
			Targets: []*l7api.PolicyTarget{gatewayTarget}, Rules: []*l7api.L7Rule{getOnly}}, pol("del", l7api.Action_DENY, deleteOnly)},
			request(), Verdict{Allow: true, DryRun: []string{"demo/dry"}}},
		{"audit recorded, allow decides", []*l7api.L7Policy{pol("audit", l7api.Action_AUDIT, getOnly), pol("get", l7api.Action_ALLOW, getOnly)},
			request(), Verdict{Allow: true, Policy: "demo/get", Audit: []string{"demo/audit"}}},
		{"audit alone does not deny", []*l7api.L7Policy{pol("audit", l7api.Action_AUDIT, deleteOnly)}, request(del),
			Verdict{Allow: true, Audit: []string{"demo/audit"}}},
		{"audit recorded on deny", []*l7api.L7Policy{pol("audit", l7api.Action_AUDIT, &l7api.L7Rule{}), pol("del", l7api.Action_DENY, deleteOnly)},
			request(del), Verdict{Policy: "demo/del", Audit: []string{"demo/audit"}}},
		{"audit not matching", []*l7api.L7Policy{pol("audit", l7api.Action_AUDIT, deleteOnly)}, request(), Verdict{Allow: true}},
		{"audit targeting gateway and service counted once", []*l7api.L7Policy{{Name: "both", Namespace: "demo", Action: l7api.Action_AUDIT,
			Targets: []*l7api.PolicyTarget{gatewayTarget, {Kind: l7api.PolicyTarget_SERVICE, Name: "reviews"}}, Rules: []*l7api.L7Rule{{}}}},
			request(), Verdict{Allow: true, Audit: []string{"demo/both"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCompile(t, tc.policies...).Evaluate(tc.req)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTCP checks Istio's rule for traffic without HTTP attributes: ALLOW
// and AUDIT rules with HTTP fields do not match, DENY rules match without
// their HTTP parts.
func TestTCP(t *testing.T) {
	tcp := func(r *Request) { r.TCP = true; r.Host, r.Method, r.Path, r.Headers = "", "", "", nil }
	postOn9080 := to(&l7api.Operation{Methods: []string{"POST"}, Ports: []uint32{9080}})
	tests := []struct {
		name     string
		policies []*l7api.L7Policy
		want     Verdict
	}{
		{"deny with http fields matches on its port", []*l7api.L7Policy{pol("deny", l7api.Action_DENY, postOn9080)}, Verdict{Policy: "demo/deny"}},
		{"deny with http fields, other port", []*l7api.L7Policy{pol("deny", l7api.Action_DENY, to(&l7api.Operation{Methods: []string{"POST"}, Ports: []uint32{80}}))}, Verdict{Allow: true}},
		{"deny with only http fields denies all", []*l7api.L7Policy{pol("deny", l7api.Action_DENY, to(&l7api.Operation{Paths: []string{"/admin"}}))}, Verdict{Policy: "demo/deny"}},
		{"deny header condition dropped", []*l7api.L7Policy{pol("deny", l7api.Action_DENY, when(cond("request.headers[x]", "1"), cond("source.namespace", "demo")))}, Verdict{Policy: "demo/deny"}},
		{"deny keeps l4 conditions", []*l7api.L7Policy{pol("deny", l7api.Action_DENY, when(cond("request.headers[x]", "1"), cond("source.namespace", "prod")))}, Verdict{Allow: true}},
		{"deny with from only", []*l7api.L7Policy{pol("deny", l7api.Action_DENY, from(&l7api.Source{Namespaces: []string{"demo"}}))}, Verdict{Policy: "demo/deny"}},
		{"allow with http fields does not match", []*l7api.L7Policy{pol("allow", l7api.Action_ALLOW, postOn9080)}, Verdict{}},
		{"allow l4 rule matches", []*l7api.L7Policy{pol("allow", l7api.Action_ALLOW, postOn9080, to(&l7api.Operation{Ports: []uint32{9080}}))}, Verdict{Allow: true, Policy: "demo/allow"}},
		{"audit with http fields does not match", []*l7api.L7Policy{pol("audit", l7api.Action_AUDIT, postOn9080)}, Verdict{Allow: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCompile(t, tc.policies...).Evaluate(request(tcp))
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNilEngineAllows(t *testing.T) {
	var e *Engine
	if v := e.Evaluate(request()); !v.Allow {
		t.Errorf("nil Engine denied: %+v", v)
	}
}

func TestCompileErrors(t *testing.T) {
	withRule := func(r *l7api.L7Rule) []*l7api.L7Policy { return []*l7api.L7Policy{pol("p", l7api.Action_ALLOW, r)} }
	tests := []struct {
		name string
		ps   []*l7api.L7Policy
		want string
	}{
		{"nil policy", []*l7api.L7Policy{nil}, "l7policy [0]: nil"},
		{"no name", []*l7api.L7Policy{{Namespace: "demo"}}, `l7policy [0] "demo/": name and namespace must be set`},
		{"duplicate", []*l7api.L7Policy{pol("p", 0), pol("p", 0)}, `l7policy "demo/p": duplicate`},
		{"unknown action", []*l7api.L7Policy{pol("p", 9)}, `l7policy "demo/p": action: unknown 9`},
		{"target without name", []*l7api.L7Policy{{Name: "p", Namespace: "demo", Targets: []*l7api.PolicyTarget{{}}}}, `l7policy "demo/p": targets[0].name: empty`},
		{"target kind", []*l7api.L7Policy{{Name: "p", Namespace: "demo", Targets: []*l7api.PolicyTarget{{Kind: 5, Name: "x"}}}}, `l7policy "demo/p": targets[0].kind: unknown 5`},
		{"bad cidr", withRule(from(&l7api.Source{IpBlocks: []string{"10.0.0.0/33"}})), `l7policy "demo/p": rules[0].from[0].ip_blocks[0]: "10.0.0.0/33" is not a CIDR or address`},
		{"bad not cidr", withRule(from(&l7api.Source{NotIpBlocks: []string{"x"}})), `l7policy "demo/p": rules[0].from[0].not_ip_blocks[0]: "x"`},
		{"template not last", withRule(to(&l7api.Operation{Paths: []string{"/{**}/foo/{*}"}})), `l7policy "demo/p": rules[0].to[0].paths[0]: path template "/{**}/foo/{*}": {**} must be the last segment`},
		{"template star outside", withRule(to(&l7api.Operation{Paths: []string{"/*/baz/{*}"}})), `rules[0].to[0].paths[0]: path template "/*/baz/{*}": segment "*"`},
		{"template double star outside", withRule(to(&l7api.Operation{Paths: []string{"/**/baz/{*}"}})), `segment "**"`},
		{"template mixed segment", withRule(to(&l7api.Operation{Paths: []string{"/foo/{*}.txt"}})), `segment "{*}.txt"`},
		{"template relative", withRule(to(&l7api.Operation{NotPaths: []string{"foo/{*}"}})), `rules[0].to[0].not_paths[0]: path template "foo/{*}" must start with /`},
		{"template literal after rest", withRule(to(&l7api.Operation{Paths: []string{"/foo/{**}/"}})), `{**} must be the last segment`},
		{"port zero", withRule(to(&l7api.Operation{Ports: []uint32{0}})), `rules[0].to[0].ports[0]: port 0 out of range`},
		{"not port too big", withRule(to(&l7api.Operation{NotPorts: []uint32{70000}})), `rules[0].to[0].not_ports[0]: port 70000`},
		{"unknown when key", withRule(when(cond("request.auth.claims[iss]", "x"))), `l7policy "demo/p": rules[0].when[0]: key "request.auth.claims[iss]": unsupported`},
		{"unknown when key remote.ip", withRule(when(cond("remote.ip", "10.0.0.1"))), `key "remote.ip": unsupported`},
		{"when bad destination ip", withRule(when(cond("destination.ip", "10.0.0.0/40"))), `key "destination.ip": values[0]: "10.0.0.0/40"`},
		{"when without values", withRule(when(&l7api.Condition{Key: "source.ip"})), `rules[0].when[0]: key "source.ip": values or not_values must be set`},
		{"when bad header", withRule(when(cond("request.headers[]", "x"))), `key "request.headers[]": invalid header name`},
		{"when bad ip", withRule(when(notCond("source.ip", "1.2.3"))), `rules[0].when[0]: key "source.ip": not_values[0]: "1.2.3"`},
		{"when bad port", withRule(when(cond("destination.port", "http"))), `rules[0].when[0]: key "destination.port": values[0]: "http" is not a port`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.ps)
			if err == nil {
				t.Fatalf("Compile succeeded, want error containing %q", tc.want)
			}
			if !contains(err.Error(), tc.want) {
				t.Errorf("error\n  %s\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
