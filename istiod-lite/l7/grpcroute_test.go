package l7

import "testing"

func TestTranslateGRPCRoute(t *testing.T) {
	backend := `"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":9000,"weight":1}]`
	tests := []struct {
		name, spec, want string
	}{
		{"service and method exact", `{rules: [{matches: [{method: {service: helloworld.Greeter, method: SayHello}}], backendRefs: [{name: v1, port: 9000}]}]}`,
			`{"routes":[{"name":"GRPCRoute/demo/g/0","match":{"path":{"kind":"EXACT","value":"/helloworld.Greeter/SayHello"}},` + backend + `}]}`},
		{"service only is a prefix", `{rules: [{matches: [{method: {service: helloworld.Greeter}}], backendRefs: [{name: v1, port: 9000}]}]}`,
			`{"routes":[{"name":"GRPCRoute/demo/g/0","match":{"path":{"value":"/helloworld.Greeter"}},` + backend + `}]}`},
		{"method only is a regex on any service", `{rules: [{matches: [{method: {method: SayHello}}], backendRefs: [{name: v1, port: 9000}]}]}`,
			`{"routes":[{"name":"GRPCRoute/demo/g/0","match":{"path":{"kind":"REGEX","value":"^/[^/]+/SayHello$"}},` + backend + `}]}`},
		{"regular expressions", `{rules: [{matches: [{method: {type: RegularExpression, service: "hello.*", method: "Say.*"}}], backendRefs: [{name: v1, port: 9000}]}]}`,
			`{"routes":[{"name":"GRPCRoute/demo/g/0","match":{"path":{"kind":"REGEX","value":"^/(hello.*)/(Say.*)$"}},` + backend + `}]}`},
		{"headers and no method", `{rules: [{matches: [{headers: [{name: X-Env, value: canary}]}, {}], backendRefs: [{name: v1, port: 9000}]}]}`,
			`{"routes":[{"name":"GRPCRoute/demo/g/0/0","match":{"path":{"value":"/"},"headers":[{"name":"x-env","value":"canary"}]},` + backend + `},
			{"name":"GRPCRoute/demo/g/0/1","match":{"path":{"value":"/"}},` + backend + `}]}`},
		{"filters", `{rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: b}]}}, {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 9000}}}], backendRefs: [{name: v1, port: 9000}]}]}`,
			`{"routes":[{"name":"GRPCRoute/demo/g/0","match":{"path":{"value":"/"}},` + backend + `,"requestHeaders":[{"name":"x-a","value":"b"}],
			"mirrors":[{"service":{"namespace":"demo","name":"shadow","hostname":"shadow.demo.svc.cluster.local"},"port":9000}]}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			rs := testCfg.translateGRPCRoute(grpcRoute(t, tc.spec), &p)
			if len(p.list) > 0 {
				t.Fatalf("problems: %v", fields(&p))
			}
			if d := diff(routes(t, tc.want), rs.routes); d != "" {
				t.Errorf("routes (-want +got):\n%s", d)
			}
		})
	}
}

func TestTranslateGRPCRouteErrors(t *testing.T) {
	tests := []struct{ name, spec, field string }{
		{"empty method match", `{rules: [{matches: [{method: {}}], backendRefs: [{name: v1, port: 9000}]}]}`, "spec.rules[0].matches[0].method"},
		{"invalid exact name", `{rules: [{matches: [{method: {service: "a/b"}}], backendRefs: [{name: v1, port: 9000}]}]}`, "spec.rules[0].matches[0].method.service"},
		{"invalid regex", `{rules: [{matches: [{method: {type: RegularExpression, method: "("}}], backendRefs: [{name: v1, port: 9000}]}]}`, "spec.rules[0].matches[0].method.method"},
		{"unsupported filter", `{rules: [{filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}], backendRefs: [{name: v1, port: 9000}]}]}`, "spec.rules[0].filters[0].type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			testCfg.translateGRPCRoute(grpcRoute(t, tc.spec), &p)
			if !p.fatal {
				t.Fatalf("not rejected; problems %v", fields(&p))
			}
			if d := diff([]string{tc.field}, fields(&p)); d != "" {
				t.Errorf("problem fields (-want +got):\n%s", d)
			}
		})
	}
}
