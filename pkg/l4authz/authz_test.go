package l4authz

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/identity"
)

func exact(s string) *pb.StringMatch {
	return &pb.StringMatch{MatchType: &pb.StringMatch_Exact{Exact: s}}
}
func prefix(s string) *pb.StringMatch {
	return &pb.StringMatch{MatchType: &pb.StringMatch_Prefix{Prefix: s}}
}
func suffix(s string) *pb.StringMatch {
	return &pb.StringMatch{MatchType: &pb.StringMatch_Suffix{Suffix: s}}
}
func presence() *pb.StringMatch {
	return &pb.StringMatch{MatchType: &pb.StringMatch_Presence{Presence: &emptypb.Empty{}}}
}

func cidr(s string) *pb.Address {
	p := netip.MustParsePrefix(s)
	return &pb.Address{Address: p.Addr().AsSlice(), Length: uint32(p.Bits())}
}

// policy builds a policy with one rule of one clause holding m.
func policy(name string, action pb.Action, m *pb.Match) *pb.Authorization {
	return &pb.Authorization{Name: name, Namespace: "ns1", Action: action, Scope: pb.Scope_NAMESPACE,
		Rules: []*pb.Rule{{Clauses: []*pb.Clause{{Matches: []*pb.Match{m}}}}}}
}

func mustCompile(t testing.TB, as ...*pb.Authorization) *Engine {
	t.Helper()
	var ps []*Policy
	for _, a := range as {
		p, err := Compile(a)
		if err != nil {
			t.Fatalf("compile %s: %v", a.GetName(), err)
		}
		ps = append(ps, p)
	}
	return NewEngine(ps...)
}

var (
	alice = identity.ID{TrustDomain: "cluster.local", Namespace: "ns1", ServiceAccount: "alice"}
	bob   = identity.ID{TrustDomain: "cluster.local", Namespace: "ns2", ServiceAccount: "bob"}
)

func conn(id identity.ID, src, dst string, port uint16) Conn {
	return Conn{SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), DstPort: port, Identity: id}
}

var target = Target{Namespace: "ns1"}

// TestMatchFields checks every Match field and its not_ form through an
// ALLOW policy: the connection is allowed exactly when the match matches.
func TestMatchFields(t *testing.T) {
	aliceConn := conn(alice, "10.0.0.1", "10.1.0.5", 8080)
	bobConn := conn(bob, "10.0.0.2", "10.1.0.6", 9090)
	plain := conn(identity.ID{}, "10.0.0.1", "10.1.0.5", 8080)
	v6 := conn(alice, "fd00::1", "fd00::2", 8080)
	mapped := Conn{SrcIP: netip.MustParseAddr("::ffff:10.0.0.1"), DstIP: netip.MustParseAddr("10.1.0.5"), DstPort: 8080, Identity: alice}
	tests := []struct {
		name  string
		match *pb.Match
		conn  Conn
		want  bool
	}{
		{"empty match matches all", &pb.Match{}, aliceConn, true},
		{"empty match matches plaintext", &pb.Match{}, plain, true},
		{"namespace exact", &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}}, aliceConn, true},
		{"namespace exact other", &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}}, bobConn, false},
		{"namespace or-ed", &pb.Match{Namespaces: []*pb.StringMatch{exact("x"), exact("ns2")}}, bobConn, true},
		{"namespace prefix", &pb.Match{Namespaces: []*pb.StringMatch{prefix("ns")}}, bobConn, true},
		{"namespace prefix miss", &pb.Match{Namespaces: []*pb.StringMatch{prefix("prod")}}, bobConn, false},
		{"namespace suffix", &pb.Match{Namespaces: []*pb.StringMatch{suffix("2")}}, bobConn, true},
		{"namespace suffix miss", &pb.Match{Namespaces: []*pb.StringMatch{suffix("2")}}, aliceConn, false},
		{"namespace presence", &pb.Match{Namespaces: []*pb.StringMatch{presence()}}, aliceConn, true},
		{"namespace presence plaintext", &pb.Match{Namespaces: []*pb.StringMatch{presence()}}, plain, false},
		{"namespace plaintext", &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}}, plain, false},
		{"not_namespaces hit", &pb.Match{NotNamespaces: []*pb.StringMatch{exact("ns1")}}, aliceConn, false},
		{"not_namespaces miss", &pb.Match{NotNamespaces: []*pb.StringMatch{exact("ns1")}}, bobConn, true},
		{"not_namespaces prefix", &pb.Match{NotNamespaces: []*pb.StringMatch{prefix("ns")}}, bobConn, false},
		{"not_namespaces plaintext", &pb.Match{NotNamespaces: []*pb.StringMatch{exact("ns1")}}, plain, true},
		{"principal exact", &pb.Match{Principals: []*pb.StringMatch{exact("cluster.local/ns/ns1/sa/alice")}}, aliceConn, true},
		{"principal exact with scheme", &pb.Match{Principals: []*pb.StringMatch{exact("spiffe://cluster.local/ns/ns1/sa/alice")}}, aliceConn, true},
		{"principal exact other", &pb.Match{Principals: []*pb.StringMatch{exact("cluster.local/ns/ns1/sa/alice")}}, bobConn, false},
		{"principal prefix", &pb.Match{Principals: []*pb.StringMatch{prefix("cluster.local/ns/ns2/")}}, bobConn, true},
		{"principal suffix", &pb.Match{Principals: []*pb.StringMatch{suffix("/sa/bob")}}, bobConn, true},
		{"principal suffix miss", &pb.Match{Principals: []*pb.StringMatch{suffix("/sa/bob")}}, aliceConn, false},
		{"principal presence", &pb.Match{Principals: []*pb.StringMatch{presence()}}, aliceConn, true},
		{"principal presence plaintext", &pb.Match{Principals: []*pb.StringMatch{presence()}}, plain, false},
		{"not_principals hit", &pb.Match{NotPrincipals: []*pb.StringMatch{exact("cluster.local/ns/ns1/sa/alice")}}, aliceConn, false},
		{"not_principals miss", &pb.Match{NotPrincipals: []*pb.StringMatch{exact("cluster.local/ns/ns1/sa/alice")}}, bobConn, true},
		{"not_principals presence plaintext", &pb.Match{NotPrincipals: []*pb.StringMatch{presence()}}, plain, true},
		{"not_principals presence mtls", &pb.Match{NotPrincipals: []*pb.StringMatch{presence()}}, aliceConn, false},
		{"source ip /32", &pb.Match{SourceIps: []*pb.Address{cidr("10.0.0.1/32")}}, aliceConn, true},
		{"source ip /32 miss", &pb.Match{SourceIps: []*pb.Address{cidr("10.0.0.1/32")}}, bobConn, false},
		{"source ip /8", &pb.Match{SourceIps: []*pb.Address{cidr("10.0.0.0/8")}}, bobConn, true},
		{"source ip unmasked", &pb.Match{SourceIps: []*pb.Address{cidr("10.0.0.9/24")}}, bobConn, true},
		{"source ip mapped conn", &pb.Match{SourceIps: []*pb.Address{cidr("10.0.0.0/24")}}, mapped, true},
		{"source ip mapped policy", &pb.Match{SourceIps: []*pb.Address{cidr("::ffff:10.0.0.0/120")}}, aliceConn, true},
		{"source ip v6", &pb.Match{SourceIps: []*pb.Address{cidr("fd00::/64")}}, v6, true},
		{"source ip v6 vs v4", &pb.Match{SourceIps: []*pb.Address{cidr("fd00::/64")}}, aliceConn, false},
		{"source ip any /0", &pb.Match{SourceIps: []*pb.Address{cidr("0.0.0.0/0")}}, plain, true},
		{"not_source_ips hit", &pb.Match{NotSourceIps: []*pb.Address{cidr("10.0.0.1/32")}}, aliceConn, false},
		{"not_source_ips miss", &pb.Match{NotSourceIps: []*pb.Address{cidr("10.0.0.1/32")}}, bobConn, true},
		{"destination ip", &pb.Match{DestinationIps: []*pb.Address{cidr("10.1.0.5/32")}}, aliceConn, true},
		{"destination ip miss", &pb.Match{DestinationIps: []*pb.Address{cidr("10.1.0.5/32")}}, bobConn, false},
		{"not_destination_ips hit", &pb.Match{NotDestinationIps: []*pb.Address{cidr("10.1.0.0/24")}}, bobConn, false},
		{"not_destination_ips miss", &pb.Match{NotDestinationIps: []*pb.Address{cidr("10.2.0.0/24")}}, bobConn, true},
		{"destination port", &pb.Match{DestinationPorts: []uint32{80, 8080}}, aliceConn, true},
		{"destination port miss", &pb.Match{DestinationPorts: []uint32{80, 8080}}, bobConn, false},
		{"not_destination_ports hit", &pb.Match{NotDestinationPorts: []uint32{9090}}, bobConn, false},
		{"not_destination_ports miss", &pb.Match{NotDestinationPorts: []uint32{9090}}, aliceConn, true},
		{"service account", &pb.Match{ServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "ns2", ServiceAccount: "bob"}}}, bobConn, true},
		{"service account wrong ns", &pb.Match{ServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "ns1", ServiceAccount: "bob"}}}, bobConn, false},
		{"service account defaults to policy ns", &pb.Match{ServiceAccounts: []*pb.ServiceAccountMatch{{ServiceAccount: "alice"}}}, aliceConn, true},
		{"service account plaintext", &pb.Match{ServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "ns1", ServiceAccount: "alice"}}}, plain, false},
		{"not_service_accounts hit", &pb.Match{NotServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "ns2", ServiceAccount: "bob"}}}, bobConn, false},
		{"not_service_accounts miss", &pb.Match{NotServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "ns2", ServiceAccount: "bob"}}}, aliceConn, true},
		{"not_service_accounts plaintext", &pb.Match{NotServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "ns2", ServiceAccount: "bob"}}}, plain, true},
		{"fields and-ed all hit", &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}, DestinationPorts: []uint32{8080}, SourceIps: []*pb.Address{cidr("10.0.0.0/24")}}, aliceConn, true},
		{"fields and-ed one miss", &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}, DestinationPorts: []uint32{80}}, aliceConn, false},
		{"positive and not together", &pb.Match{Namespaces: []*pb.StringMatch{prefix("ns")}, NotNamespaces: []*pb.StringMatch{exact("ns2")}}, bobConn, false},
		{"positive and not together other", &pb.Match{Namespaces: []*pb.StringMatch{prefix("ns")}, NotNamespaces: []*pb.StringMatch{exact("ns2")}}, aliceConn, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCompile(t, policy("p", pb.Action_ALLOW, tt.match))
			got := e.Evaluate(target, tt.conn)
			if got.Allowed != tt.want {
				t.Errorf("Allowed = %v, want %v (%+v)", got.Allowed, tt.want, got)
			}
			// The same match in a DENY policy denies exactly when it matches.
			d := mustCompile(t, policy("p", pb.Action_DENY, tt.match)).Evaluate(target, tt.conn)
			if d.Allowed == tt.want {
				t.Errorf("as DENY: Allowed = %v, want %v", d.Allowed, !tt.want)
			}
		})
	}
}

func TestRuleStructure(t *testing.T) {
	ns1 := &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}}
	ns2 := &pb.Match{Namespaces: []*pb.StringMatch{exact("ns2")}}
	port8080 := &pb.Match{DestinationPorts: []uint32{8080}}
	mk := func(rules ...*pb.Rule) *pb.Authorization {
		return &pb.Authorization{Name: "p", Namespace: "ns1", Scope: pb.Scope_NAMESPACE, Rules: rules}
	}
	aliceConn := conn(alice, "10.0.0.1", "10.1.0.5", 8080)
	tests := []struct {
		name string
		a    *pb.Authorization
		want bool
	}{
		{"allow without rules denies all", mk(), false},
		{"empty rule matches all", mk(&pb.Rule{}), true},
		{"empty clause matches nothing", mk(&pb.Rule{Clauses: []*pb.Clause{{}}}), false},
		{"rules or-ed", mk(&pb.Rule{Clauses: []*pb.Clause{{Matches: []*pb.Match{ns2}}}}, &pb.Rule{Clauses: []*pb.Clause{{Matches: []*pb.Match{ns1}}}}), true},
		{"clauses and-ed hit", mk(&pb.Rule{Clauses: []*pb.Clause{{Matches: []*pb.Match{ns1}}, {Matches: []*pb.Match{port8080}}}}), true},
		{"clauses and-ed miss", mk(&pb.Rule{Clauses: []*pb.Clause{{Matches: []*pb.Match{ns1}}, {Matches: []*pb.Match{ns2}}}}), false},
		{"matches or-ed", mk(&pb.Rule{Clauses: []*pb.Clause{{Matches: []*pb.Match{ns2, ns1}}}}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustCompile(t, tt.a).Evaluate(target, aliceConn); got.Allowed != tt.want {
				t.Errorf("Allowed = %v, want %v (%+v)", got.Allowed, tt.want, got)
			}
		})
	}
}

func TestPrecedenceAndScope(t *testing.T) {
	fromNS1 := &pb.Match{Namespaces: []*pb.StringMatch{exact("ns1")}}
	fromNS2 := &pb.Match{Namespaces: []*pb.StringMatch{exact("ns2")}}
	all := &pb.Match{}
	with := func(a *pb.Authorization, f func(*pb.Authorization)) *pb.Authorization { f(a); return a }
	global := func(a *pb.Authorization) { a.Namespace, a.Scope = "istio-system", pb.Scope_GLOBAL }
	selector := func(a *pb.Authorization) { a.Scope = pb.Scope_WORKLOAD_SELECTOR }
	dry := func(a *pb.Authorization) { a.DryRun = true }
	otherNS := func(a *pb.Authorization) { a.Namespace = "ns9" }
	aliceConn := conn(alice, "10.0.0.1", "10.1.0.5", 8080)
	selected := Target{Namespace: "ns1", Policies: []string{"ns1/sel", "ns1/missing"}}
	tests := []struct {
		name     string
		policies []*pb.Authorization
		target   Target
		want     Decision
	}{
		{"no policies allows", nil, target, Decision{Allowed: true, Reason: ReasonNoAllowPolicy}},
		{"deny matches", []*pb.Authorization{policy("d", pb.Action_DENY, fromNS1)}, target,
			Decision{Allowed: false, Policy: "ns1/d", Reason: ReasonDenyMatched}},
		{"deny not matching, no allow", []*pb.Authorization{policy("d", pb.Action_DENY, fromNS2)}, target,
			Decision{Allowed: true, Reason: ReasonNoAllowPolicy}},
		{"deny before allow", []*pb.Authorization{policy("a", pb.Action_ALLOW, all), policy("d", pb.Action_DENY, fromNS1)}, target,
			Decision{Allowed: false, Policy: "ns1/d", Reason: ReasonDenyMatched}},
		{"allow matches", []*pb.Authorization{policy("a", pb.Action_ALLOW, fromNS1)}, target,
			Decision{Allowed: true, Policy: "ns1/a", Reason: ReasonAllowMatched}},
		{"allow not matching denies", []*pb.Authorization{policy("a", pb.Action_ALLOW, fromNS2)}, target,
			Decision{Allowed: false, Reason: ReasonNoAllowMatch}},
		{"any allow matches", []*pb.Authorization{policy("a", pb.Action_ALLOW, fromNS2), policy("b", pb.Action_ALLOW, fromNS1)}, target,
			Decision{Allowed: true, Policy: "ns1/b", Reason: ReasonAllowMatched}},
		{"other namespace policy ignored", []*pb.Authorization{with(policy("d", pb.Action_DENY, all), otherNS)}, target,
			Decision{Allowed: true, Reason: ReasonNoAllowPolicy}},
		{"other namespace allow does not make default deny", []*pb.Authorization{with(policy("a", pb.Action_ALLOW, fromNS2), otherNS)}, target,
			Decision{Allowed: true, Reason: ReasonNoAllowPolicy}},
		{"global deny applies", []*pb.Authorization{with(policy("d", pb.Action_DENY, all), global)}, target,
			Decision{Allowed: false, Policy: "istio-system/d", Reason: ReasonDenyMatched}},
		{"global allow not matching denies", []*pb.Authorization{with(policy("a", pb.Action_ALLOW, fromNS2), global)}, target,
			Decision{Allowed: false, Reason: ReasonNoAllowMatch}},
		{"selector policy not listed ignored", []*pb.Authorization{with(policy("sel", pb.Action_DENY, all), selector)}, target,
			Decision{Allowed: true, Reason: ReasonNoAllowPolicy}},
		{"selector policy listed applies", []*pb.Authorization{with(policy("sel", pb.Action_DENY, all), selector)}, selected,
			Decision{Allowed: false, Policy: "ns1/sel", Reason: ReasonDenyMatched}},
		{"selector allow plus namespace allow", []*pb.Authorization{with(policy("sel", pb.Action_ALLOW, fromNS2), selector), policy("a", pb.Action_ALLOW, fromNS1)}, selected,
			Decision{Allowed: true, Policy: "ns1/a", Reason: ReasonAllowMatched}},
		{"dry-run deny never decides", []*pb.Authorization{with(policy("d", pb.Action_DENY, all), dry)}, target,
			Decision{Allowed: true, Reason: ReasonNoAllowPolicy, DryRun: []string{"DENY ns1/d"}}},
		{"dry-run allow does not make default deny", []*pb.Authorization{with(policy("a", pb.Action_ALLOW, fromNS2), dry)}, target,
			Decision{Allowed: true, Reason: ReasonNoAllowPolicy}},
		{"dry-run allow reported", []*pb.Authorization{with(policy("a", pb.Action_ALLOW, fromNS1), dry), policy("d", pb.Action_DENY, fromNS1)}, target,
			Decision{Allowed: false, Policy: "ns1/d", Reason: ReasonDenyMatched, DryRun: []string{"ALLOW ns1/a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustCompile(t, tt.policies...).Evaluate(tt.target, aliceConn)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEnginesAreSnapshots: an engine never changes; a decision taken on
// an old engine does not carry over to the engine built after a DENY on a
// port is added (callers must evaluate on the current engine, and re-check
// open connections when it is replaced).
func TestEnginesAreSnapshots(t *testing.T) {
	allow := policy("allow", pb.Action_ALLOW, &pb.Match{Principals: []*pb.StringMatch{exact("cluster.local/ns/ns1/sa/alice")}})
	deny := policy("deny-9000", pb.Action_DENY, &pb.Match{DestinationPorts: []uint32{9000}})
	before := mustCompile(t, allow)
	after := mustCompile(t, allow, deny)
	c := conn(alice, "10.0.0.1", "10.1.0.5", 9000)
	if d := before.Evaluate(target, c); !d.Allowed {
		t.Fatalf("before the DENY: %+v", d)
	}
	if d := after.Evaluate(target, c); d.Allowed || d.Policy != "ns1/deny-9000" || d.Reason != ReasonDenyMatched {
		t.Errorf("after the DENY: %+v", d)
	}
	if d := after.Evaluate(target, conn(alice, "10.0.0.1", "10.1.0.5", 8080)); !d.Allowed || d.Policy != "ns1/allow" {
		t.Errorf("other port after the DENY: %+v", d)
	}
	if d := before.Evaluate(target, c); !d.Allowed {
		t.Errorf("old engine changed: %+v", d)
	}
}

func TestNilEngineAllows(t *testing.T) {
	var e *Engine
	if !e.Evaluate(target, Conn{}).Allowed {
		t.Fatal("nil engine denied")
	}
}

func TestCompileErrors(t *testing.T) {
	base := func(m *pb.Match) *pb.Authorization { return policy("p", pb.Action_ALLOW, m) }
	tests := []struct {
		name string
		a    *pb.Authorization
		want string
	}{
		{"nil", nil, "authorization is empty"},
		{"no name", &pb.Authorization{Namespace: "ns"}, "name: must not be empty"},
		{"no namespace", &pb.Authorization{Name: "n"}, "namespace: must not be empty"},
		{"bad scope", &pb.Authorization{Name: "n", Namespace: "ns", Scope: 7}, "scope: unknown value 7"},
		{"bad action", &pb.Authorization{Name: "n", Namespace: "ns", Action: 9}, "action: unknown value 9"},
		{"empty string match", base(&pb.Match{Principals: []*pb.StringMatch{{}}}), "rules[0].clauses[0].matches[0].principals[0]: no match type set"},
		{"bad address", base(&pb.Match{SourceIps: []*pb.Address{{Address: []byte{1, 2, 3}, Length: 8}}}), "rules[0].clauses[0].matches[0].source_ips[0]: address is 3 bytes"},
		{"bad prefix length", base(&pb.Match{NotDestinationIps: []*pb.Address{{Address: []byte{1, 2, 3, 4}, Length: 33}}}), "not_destination_ips[0]: prefix length 33 longer"},
		{"port zero", base(&pb.Match{DestinationPorts: []uint32{0}}), "destination_ports[0]: port 0 out of range"},
		{"port too large", base(&pb.Match{NotDestinationPorts: []uint32{80, 70000}}), "not_destination_ports[1]: port 70000 out of range"},
		{"empty service account", base(&pb.Match{ServiceAccounts: []*pb.ServiceAccountMatch{{Namespace: "x"}}}), "service_accounts[0]: serviceAccount must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestApplicableAndPolicies(t *testing.T) {
	e := mustCompile(t,
		&pb.Authorization{Name: "g", Namespace: "istio-system", Scope: pb.Scope_GLOBAL},
		&pb.Authorization{Name: "n", Namespace: "ns1", Scope: pb.Scope_NAMESPACE},
		&pb.Authorization{Name: "n", Namespace: "ns2", Scope: pb.Scope_NAMESPACE},
		&pb.Authorization{Name: "s", Namespace: "ns1", Scope: pb.Scope_WORKLOAD_SELECTOR},
	)
	var got []string
	for _, p := range e.Applicable(Target{Namespace: "ns1", Policies: []string{"ns1/s"}}) {
		got = append(got, p.Key)
	}
	if diff := cmp.Diff([]string{"istio-system/g", "ns1/n", "ns1/s"}, got); diff != "" {
		t.Errorf("applicable (-want +got):\n%s", diff)
	}
	if n := len(e.Policies()); n != 4 {
		t.Errorf("Policies() has %d, want 4", n)
	}
}

// BenchmarkEvaluate measures one decision against a realistic policy set:
// a global STRICT-like deny, a namespace allow list and a selector policy.
func BenchmarkEvaluate(b *testing.B) {
	var as []*pb.Authorization
	as = append(as, &pb.Authorization{Name: "strict", Namespace: "istio-system", Scope: pb.Scope_GLOBAL, Action: pb.Action_DENY,
		Rules: []*pb.Rule{{Clauses: []*pb.Clause{{Matches: []*pb.Match{{NotPrincipals: []*pb.StringMatch{presence()}}}}}}}})
	for i := range 20 {
		as = append(as, policy("allow-"+string(rune('a'+i)), pb.Action_ALLOW, &pb.Match{
			Principals:       []*pb.StringMatch{exact("cluster.local/ns/other/sa/x" + string(rune('a'+i)))},
			DestinationPorts: []uint32{80, 443},
		}))
	}
	as = append(as, policy("allow-alice", pb.Action_ALLOW, &pb.Match{
		Principals: []*pb.StringMatch{exact("cluster.local/ns/ns1/sa/alice")}, SourceIps: []*pb.Address{cidr("10.0.0.0/8")}}))
	e := mustCompile(b, as...)
	c := conn(alice, "10.0.0.1", "10.1.0.5", 8080)
	b.ReportAllocs()
	for b.Loop() {
		if !e.Evaluate(target, c).Allowed {
			b.Fatal("denied")
		}
	}
}
