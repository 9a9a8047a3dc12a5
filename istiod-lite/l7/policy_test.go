package l7

import (
	"testing"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func TestTranslatePolicy(t *testing.T) {
	classes := map[string]string{"demo/waypoint": WaypointGatewayClass, "demo/ingress": "istio"}
	classOf := func(ns, name string) (string, bool) { c, ok := classes[ns+"/"+name]; return c, ok }
	tests := []struct {
		name   string
		spec   string
		want   string // protojson L7Policy; "" = not served
		fields []string
	}{
		{
			name: "ALLOW for a waypoint Gateway with every source and operation field",
			spec: `{"targetRefs":[{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"waypoint"}],"rules":[{
				"from":[{"source":{"principals":["cluster.local/ns/demo/sa/client"],"notPrincipals":["x/*"],"namespaces":["demo"],"notNamespaces":["evil"],
				  "ipBlocks":["10.0.0.0/8"],"notIpBlocks":["10.1.0.1"],"serviceAccounts":["other/sa","local"],"trustDomains":["td"]}}],
				"to":[{"operation":{"hosts":["svc.demo.svc.cluster.local"],"methods":["GET","HEAD"],"notMethods":["DELETE"],"paths":["/api/{*}/items/{**}"],"notPaths":["/admin*"],"ports":["8080"],"notPorts":["9090"]}}],
				"when":[{"key":"request.headers[X-Tenant]","values":["a"]},{"key":"source.ip","notValues":["192.168.0.0/16"]},{"key":"destination.port","values":["8080"]}]}]}`,
			want: `{"name":"p","namespace":"demo","targets":[{"namespace":"demo","name":"waypoint"}],"rules":[{
				"from":[{"principals":["cluster.local/ns/demo/sa/client","cluster.local/ns/other/sa/sa","cluster.local/ns/demo/sa/local","td/*"],"notPrincipals":["x/*"],
				  "namespaces":["demo"],"notNamespaces":["evil"],"ipBlocks":["10.0.0.0/8"],"notIpBlocks":["10.1.0.1"]}],
				"to":[{"hosts":["svc.demo.svc.cluster.local"],"methods":["GET","HEAD"],"notMethods":["DELETE"],"paths":["/api/{*}/items/{**}"],"notPaths":["/admin*"],"ports":[8080],"notPorts":[9090]}],
				"when":[{"key":"request.headers[x-tenant]","values":["a"]},{"key":"source.ip","notValues":["192.168.0.0/16"]},{"key":"destination.port","values":["8080"]}]}]}`,
		},
		{
			name: "DENY on a Service, dry run kept in targetRef form",
			spec: `{"action":"DENY","targetRef":{"kind":"Service","name":"svc"},"rules":[{"to":[{"operation":{"methods":["DELETE"]}}]}]}`,
			want: `{"name":"p","namespace":"demo","action":"DENY","targets":[{"kind":"SERVICE","namespace":"demo","name":"svc"}],"rules":[{"to":[{"methods":["DELETE"]}]}]}`,
		},
		{
			name: "AUDIT with no rules",
			spec: `{"action":"AUDIT","targetRefs":[{"kind":"Service","group":"","name":"svc"}]}`,
			want: `{"name":"p","namespace":"demo","action":"AUDIT","targets":[{"kind":"SERVICE","namespace":"demo","name":"svc"}]}`,
		},
		{
			name: "a Gateway of another class or unknown is not a waypoint target",
			spec: `{"targetRefs":[{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"ingress"},{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"missing"}]}`,
		},
		{
			name:   "unsupported target kind and other namespace are reported, valid targets kept",
			spec:   `{"targetRefs":[{"kind":"ServiceEntry","group":"networking.istio.io","name":"se"},{"kind":"Service","name":"x","namespace":"other"},{"kind":"Service","name":"svc"}],"rules":[{}]}`,
			want:   `{"name":"p","namespace":"demo","targets":[{"kind":"SERVICE","namespace":"demo","name":"svc"}],"rules":[{}]}`,
			fields: []string{"spec.targetRefs[0].kind", "spec.targetRefs[1].namespace"},
		},
		{
			name:   "ALLOW drops a rule with an unsupported or invalid part",
			spec:   `{"targetRefs":[{"kind":"Service","name":"svc"}],"rules":[{"from":[{"source":{"requestPrincipals":["*"]}}]},{"to":[{"operation":{"ports":["http"]}}]},{"when":[{"key":"request.auth.claims[iss]","values":["x"]}]},{"to":[{"operation":{"paths":["/a{*}"]}}]},{"to":[{"operation":{"methods":["GET"]}}]}]}`,
			want:   `{"name":"p","namespace":"demo","targets":[{"kind":"SERVICE","namespace":"demo","name":"svc"}],"rules":[{"to":[{"methods":["GET"]}]}]}`,
			fields: []string{"spec.rules[0].from[0].source.requestPrincipals", "spec.rules[1].to[0].operation.ports", "spec.rules[2].when[0].key", "spec.rules[3].to[0].operation.paths"},
		},
		{
			name:   "a template with * outside an operator is invalid, as the waypoint's compiler says",
			spec:   `{"targetRefs":[{"kind":"Service","name":"svc"}],"rules":[{"to":[{"operation":{"paths":["/*/baz/{*}"]}}]},{"to":[{"operation":{"paths":["/v1/{*}/x*"]}}]},{"to":[{"operation":{"paths":["/v1/{*}/{**}"]}}]}]}`,
			want:   `{"name":"p","namespace":"demo","targets":[{"kind":"SERVICE","namespace":"demo","name":"svc"}],"rules":[{"to":[{"paths":["/v1/{*}/{**}"]}]}]}`,
			fields: []string{"spec.rules[0].to[0].operation.paths", "spec.rules[1].to[0].operation.paths"},
		},
		{
			name:   "DENY leaves the unsupported part out",
			spec:   `{"action":"DENY","targetRefs":[{"kind":"Service","name":"svc"}],"rules":[{"from":[{"source":{"remoteIpBlocks":["1.2.3.4"],"ipBlocks":["bad","10.0.0.1"]}}],"when":[{"key":"source.ip","values":["nope"]}]}]}`,
			want:   `{"name":"p","namespace":"demo","action":"DENY","targets":[{"kind":"SERVICE","namespace":"demo","name":"svc"}],"rules":[{"from":[{"ipBlocks":["10.0.0.1"]}]}]}`,
			fields: []string{"spec.rules[0].from[0].source.ipBlocks", "spec.rules[0].from[0].source.remoteIpBlocks", "spec.rules[0].when[0].values"},
		},
		{
			name:   "CUSTOM is rejected",
			spec:   `{"action":"CUSTOM","provider":{"name":"ext"},"targetRefs":[{"kind":"Service","name":"svc"}]}`,
			fields: []string{"spec.action"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			got := testCfg.translatePolicy(authzPolicy(t, "p", tc.spec), classOf, &p)
			var want *l7api.L7Policy
			if tc.want != "" {
				want = msg(t, tc.want, &l7api.L7Policy{})
			}
			if d := diff(want, got); d != "" {
				t.Errorf("policy (-want +got):\n%s", d)
			}
			if d := diff(tc.fields, fields(&p)); d != "" {
				t.Errorf("problem fields (-want +got):\n%s", d)
			}
		})
	}
}

func TestIsWaypointPolicy(t *testing.T) {
	if isWaypointPolicy(authzPolicy(t, "p", `{"selector":{"matchLabels":{"app":"a"}}}`)) {
		t.Error("selector policy is L4")
	}
	if isWaypointPolicy(authzPolicy(t, "p", `{}`)) {
		t.Error("namespace policy is L4")
	}
	if !isWaypointPolicy(authzPolicy(t, "p", `{"targetRef":{"kind":"Service","name":"s"}}`)) {
		t.Error("targetRef policy is for waypoints")
	}
}
