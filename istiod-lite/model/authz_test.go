package model

import (
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/pkg/api/securityapi"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	secv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func policy(ns string, spec string) *securityv1.AuthorizationPolicy {
	p := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}
	if err := protojson.Unmarshal([]byte(spec), &p.Spec); err != nil {
		panic(err)
	}
	return p
}

func authz(spec string) *securityapi.Authorization {
	a := &securityapi.Authorization{}
	if err := protojson.Unmarshal([]byte(spec), a); err != nil {
		panic(err)
	}
	return a
}

// TestTranslateAuthorizationPolicy covers each rule of the ambient
// AuthorizationPolicy translation.
func TestTranslateAuthorizationPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   string
		spec string
		want string // "" means nil
	}{
		{name: "allow with no rules denies all", ns: "a", spec: `{}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE"}`},
		{name: "empty rule allows all", ns: "a", spec: `{"rules":[{}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{}]}`},
		{name: "root namespace is mesh-wide", ns: "istio-system", spec: `{"action":"DENY","rules":[{}]}`,
			want: `{"name":"p","namespace":"istio-system","scope":"GLOBAL","action":"DENY","rules":[{}]}`},
		{name: "selector is workload scope", ns: "a", spec: `{"selector":{"matchLabels":{"app":"x"}},"rules":[{}]}`,
			want: `{"name":"p","namespace":"a","scope":"WORKLOAD_SELECTOR","rules":[{}]}`},
		{name: "empty selector is namespace scope", ns: "a", spec: `{"selector":{},"rules":[{}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{}]}`},
		{name: "targetRefs are for waypoints", ns: "a", spec: `{"targetRefs":[{"kind":"Service","name":"s"}],"rules":[{}]}`},
		{name: "targetRef is for waypoints", ns: "a", spec: `{"targetRef":{"kind":"Gateway","name":"w"}}`},
		{name: "custom is not enforced by ztunnel", ns: "a", spec: `{"action":"CUSTOM","provider":{"name":"x"},"rules":[{}]}`},
		{name: "audit never decides", ns: "a", spec: `{"action":"AUDIT","rules":[{}]}`},
		{name: "allow drops rule with methods", ns: "a",
			spec: `{"rules":[{"to":[{"operation":{"methods":["GET"],"ports":["80"]}}]},{"to":[{"operation":{"ports":["81"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{"clauses":[{"matches":[{"destinationPorts":[81]}]}]}]}`},
		{name: "allow drops every http field", ns: "a",
			spec: `{"rules":[{"to":[{"operation":{"hosts":["h"]}}]},{"to":[{"operation":{"notPaths":["/x"]}}]},{"from":[{"source":{"requestPrincipals":["*"]}}]},{"from":[{"source":{"notRemoteIpBlocks":["1.2.3.4"]}}]},{"when":[{"key":"request.headers[x]","values":["y"]}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE"}`},
		{name: "deny keeps rule without http parts", ns: "a",
			spec: `{"action":"DENY","rules":[{"to":[{"operation":{"methods":["GET"],"ports":["80"]}}],"when":[{"key":"request.auth.claims[iss]","values":["x"]}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","action":"DENY","rules":[{"clauses":[{"matches":[{"destinationPorts":[80]}]}]}]}`},
		{name: "deny with only http parts denies all", ns: "a",
			spec: `{"action":"DENY","rules":[{"to":[{"operation":{"paths":["/admin"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","action":"DENY","rules":[{"clauses":[{"matches":[{}]}]}]}`},
		{name: "string match forms", ns: "a",
			spec: `{"rules":[{"from":[{"source":{"namespaces":["exact","pre*","*suf","*"],"notPrincipals":["spiffe://td/ns/x/sa/y"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{"clauses":[{"matches":[{"namespaces":[{"exact":"exact"},{"prefix":"pre"},{"suffix":"suf"},{"presence":{}}],"notPrincipals":[{"exact":"td/ns/x/sa/y"}]}]}]}]}`},
		{name: "from entries are ORed in one clause, to in another", ns: "a",
			spec: `{"rules":[{"from":[{"source":{"namespaces":["x"]}},{"source":{"ipBlocks":["10.0.0.1"]}}],"to":[{"operation":{"notPorts":["22"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{"clauses":[{"matches":[{"namespaces":[{"exact":"x"}]},{"sourceIps":[{"address":"CgAAAQ==","length":32}]}]},{"matches":[{"notDestinationPorts":[22]}]}]}]}`},
		{name: "l4 when keys", ns: "a",
			spec: `{"rules":[{"when":[{"key":"source.ip","values":["10.0.0.0/8"]},{"key":"source.namespace","notValues":["b"]},{"key":"source.principal","values":["td/*"]},{"key":"destination.ip","values":["::1"]},{"key":"destination.port","notValues":["9"]}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{"clauses":[
				{"matches":[{"sourceIps":[{"address":"CgAAAA==","length":8}]}]},
				{"matches":[{"notNamespaces":[{"exact":"b"}]}]},
				{"matches":[{"principals":[{"prefix":"td/"}]}]},
				{"matches":[{"destinationIps":[{"address":"AAAAAAAAAAAAAAAAAAAAAQ==","length":128}]}]},
				{"matches":[{"notDestinationPorts":[9]}]}]}]}`},
		{name: "service accounts default to the policy namespace", ns: "a",
			spec: `{"rules":[{"from":[{"source":{"serviceAccounts":["sa1","b/sa2"],"notServiceAccounts":["c/sa3"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{"clauses":[{"matches":[{"serviceAccounts":[{"namespace":"a","serviceAccount":"sa1"},{"namespace":"b","serviceAccount":"sa2"}],"notServiceAccounts":[{"namespace":"c","serviceAccount":"sa3"}]}]}]}]}`},
		{name: "allow drops rule with an invalid port", ns: "a",
			spec: `{"rules":[{"to":[{"operation":{"ports":["http"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE"}`},
		{name: "deny drops only the invalid value", ns: "a",
			spec: `{"action":"DENY","rules":[{"from":[{"source":{"ipBlocks":["bogus","10.1.2.3/16"]}}]}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","action":"DENY","rules":[{"clauses":[{"matches":[{"sourceIps":[{"address":"CgEAAA==","length":16}]}]}]}]}`},
		{name: "dry run annotation", ns: "a", spec: `{"rules":[{}]}`,
			want: `{"name":"p","namespace":"a","scope":"NAMESPACE","rules":[{}],"dryRun":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy(tc.ns, tc.spec)
			if tc.name == "dry run annotation" {
				p.Annotations = map[string]string{AnnotationDryRun: "true"}
			}
			got := TranslateAuthorizationPolicy(p, "istio-system")
			if tc.want == "" {
				if got != nil {
					t.Fatalf("want nil, got %v", got)
				}
				return
			}
			if d := cmp.Diff(authz(tc.want), got, protocmp.Transform()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// FuzzTranslateAuthorizationPolicy checks the translation never panics,
// keeps ALLOW no looser than its input (never more rules) and DENY no
// weaker (every rule kept).
func FuzzTranslateAuthorizationPolicy(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"rules":[{}]}`, `{"action":"DENY","rules":[{"to":[{"operation":{"methods":["GET"],"ports":["x"]}}]}]}`,
		`{"rules":[{"from":[{"source":{"ipBlocks":["10.0.0.0/33","::/0"],"serviceAccounts":["a/b/c","/x"]}}],"when":[{"key":"source.ip","values":["1.2.3.4"]}]}]}`,
		`{"selector":{"matchLabels":{"a":"b"}},"action":"DENY","rules":[{"when":[{"key":"destination.port","notValues":["0","65536"]}]}]}`,
	} {
		f.Add("ns", s)
	}
	f.Fuzz(func(t *testing.T, ns, spec string) {
		// The API server only admits DNS-label namespaces, so a name that
		// is not valid UTF-8 never reaches the translation.
		if !utf8.ValidString(ns) {
			return
		}
		p := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}
		if err := protojson.Unmarshal([]byte(spec), &p.Spec); err != nil {
			return
		}
		got := TranslateAuthorizationPolicy(p, "istio-system")
		if got == nil {
			return
		}
		switch got.Action {
		case securityapi.Action_ALLOW:
			if len(got.Rules) > len(p.Spec.Rules) {
				t.Fatalf("allow gained rules: %d > %d", len(got.Rules), len(p.Spec.Rules))
			}
		case securityapi.Action_DENY:
			if len(got.Rules) != len(p.Spec.Rules) {
				t.Fatalf("deny lost rules: %d != %d", len(got.Rules), len(p.Spec.Rules))
			}
		}
		if _, err := newResource("x", nil, got); err != nil {
			t.Fatal(err)
		}
	})
}

var protocmpOpt = protocmp.Transform()

func policyMTLS(mode string) *secv1beta1.PeerAuthentication_MutualTLS {
	return &secv1beta1.PeerAuthentication_MutualTLS{Mode: secv1beta1.PeerAuthentication_MutualTLS_Mode(secv1beta1.PeerAuthentication_MutualTLS_Mode_value[mode])}
}
