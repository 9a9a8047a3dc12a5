package l7

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTranslateHTTPRoute(t *testing.T) {
	tests := []struct {
		name string
		spec string
		ann  map[string]string
		want string // {"routes": [...]}
	}{
		{
			name: "rule without matches matches every path and targets its backend",
			spec: `{rules: [{backendRefs: [{name: v1, port: 80}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}]}]}`,
		},
		{
			name: "weighted backends for a canary",
			spec: `{rules: [{backendRefs: [{name: v1, port: 80, weight: 90}, {name: v2, port: 8080, weight: 10}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},"backends":[
				{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":90},
				{"service":{"namespace":"demo","name":"v2","hostname":"v2.demo.svc.cluster.local"},"port":8080,"weight":10}]}]}`,
		},
		{
			name: "one route per match, each match translated",
			spec: `{rules: [{matches: [
				{path: {type: Exact, value: /a}, method: GET},
				{path: {type: RegularExpression, value: "/b/[0-9]+"}, headers: [{name: X-User, value: bob}, {type: RegularExpression, name: x-v, value: "v[12]"}], queryParams: [{name: Debug, value: "1"}]}],
				backendRefs: [{name: v1, port: 80}]}]}`,
			want: `{"routes":[
				{"name":"HTTPRoute/demo/r/0/0","match":{"path":{"kind":"EXACT","value":"/a"},"method":"GET"},
				 "backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}]},
				{"name":"HTTPRoute/demo/r/0/1","match":{"path":{"kind":"REGEX","value":"/b/[0-9]+"},
				  "headers":[{"name":"x-user","value":"bob"},{"kind":"REGEX","name":"x-v","value":"v[12]"}],"queryParams":[{"name":"Debug","value":"1"}]},
				 "backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}]}]}`,
		},
		{
			name: "header modifiers on the rule and on a backend",
			spec: `{rules: [{filters: [
				{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], add: [{name: x-b, value: "2"}], remove: [X-C]}},
				{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: w}]}}],
				backendRefs: [{name: v1, port: 80, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-backend, value: v1}]}}]}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1,
				  "requestHeaders":[{"op":"ADD","name":"x-backend","value":"v1"}]}],
				"requestHeaders":[{"name":"x-a","value":"1"},{"op":"ADD","name":"x-b","value":"2"},{"op":"REMOVE","name":"x-c"}],
				"responseHeaders":[{"name":"x-served-by","value":"w"}]}]}`,
		},
		{
			name: "redirect with prefix rewrite and 301",
			spec: `{rules: [{matches: [{path: {value: /old}}], filters: [{type: RequestRedirect, requestRedirect: {scheme: https, hostname: new.example, port: 8443, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/old"}},
				"redirect":{"scheme":"https","hostname":"new.example","port":8443,"statusCode":301,"path":{"replacePrefixMatch":"/new"}}}]}`,
		},
		{
			name: "URL rewrite of host and full path",
			spec: `{rules: [{filters: [{type: URLRewrite, urlRewrite: {hostname: internal, path: {type: ReplaceFullPath, replaceFullPath: /x}}}], backendRefs: [{name: v1, port: 80}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"rewrite":{"hostname":"internal","path":{"replaceFullPath":"/x"}}}]}`,
		},
		{
			name: "mirrors: all, percent, fraction; a zero percent mirrors nothing",
			spec: `{rules: [{filters: [
				{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}},
				{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 81}, percent: 25}},
				{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 82}, fraction: {numerator: 1, denominator: 8}}},
				{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 83}, percent: 0}}],
				backendRefs: [{name: v1, port: 80}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"mirrors":[{"service":{"namespace":"demo","name":"shadow","hostname":"shadow.demo.svc.cluster.local"},"port":80},
				  {"service":{"namespace":"demo","name":"shadow","hostname":"shadow.demo.svc.cluster.local"},"port":81,"percent":25},
				  {"service":{"namespace":"demo","name":"shadow","hostname":"shadow.demo.svc.cluster.local"},"port":82,"percent":12.5}]}]}`,
		},
		{
			name: "timeouts; zero disables",
			spec: `{rules: [{timeouts: {request: 1s, backendRequest: 500ms}, backendRefs: [{name: v1, port: 80}]}, {timeouts: {request: 0s}, backendRefs: [{name: v1, port: 80}]}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"timeouts":{"request":"1s","backendRequest":"0.500s"}},
				{"name":"HTTPRoute/demo/r/1","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}]}]}`,
		},
		{
			name: "no backends answers 500",
			spec: `{rules: [{}]}`,
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},"directResponse":{"status":500}}]}`,
		},
		{
			name: "rules[].retry (experimental channel) wins over annotations, which add the extras",
			spec: `{rules: [{retry: {attempts: 3, codes: [503], backoff: 10ms}, backendRefs: [{name: v1, port: 80}]}]}`,
			ann:  map[string]string{AnnotationRetryAttempts: "5", AnnotationRetryCodes: "500,502", AnnotationRetryOn: "5xx,reset", AnnotationRetryPerTryTimeout: "250ms", AnnotationRetryBudget: "25%;min=5"},
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"retry":{"attempts":3,"codes":[503],"backoff":"0.010s","retryOn":["5xx","reset"],"perTryTimeout":"0.250s","budgetPercent":25,"minRetriesPerSecond":5}}]}`,
		},
		{
			name: "retry from annotations alone; attempts default to 2",
			spec: `{rules: [{backendRefs: [{name: v1, port: 80}]}]}`,
			ann:  map[string]string{AnnotationRetryOn: "gateway-error", AnnotationRetryBackoff: "25ms"},
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"retry":{"attempts":2,"backoff":"0.025s","retryOn":["gateway-error"]}}]}`,
		},
		{
			name: "fault and rate limit annotations apply to every rule",
			spec: `{rules: [{backendRefs: [{name: v1, port: 80}]}]}`,
			ann:  map[string]string{AnnotationFaultAbort: "50%:503", AnnotationFaultDelay: "10%:3s", AnnotationRateLimit: "100/1s;burst=200;key=source"},
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"fault":{"delay":"3s","delayPercent":10,"abortStatus":503,"abortPercent":50},
				"rateLimit":{"key":"SOURCE","maxTokens":200,"tokensPerFill":100,"fillInterval":"1s"}}]}`,
		},
		{
			name: "rate limit defaults: burst = tokens, key = route",
			spec: `{rules: [{backendRefs: [{name: v1, port: 80}]}]}`,
			ann:  map[string]string{AnnotationRateLimit: "10/100ms"},
			want: `{"routes":[{"name":"HTTPRoute/demo/r/0","match":{"path":{"value":"/"}},
				"backends":[{"service":{"namespace":"demo","name":"v1","hostname":"v1.demo.svc.cluster.local"},"port":80,"weight":1}],
				"rateLimit":{"maxTokens":10,"tokensPerFill":10,"fillInterval":"0.100s"}}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			rs := testCfg.translateHTTPRoute(httpRoute(t, tc.spec, tc.ann), &p)
			if len(p.list) > 0 {
				t.Fatalf("problems: %v", fields(&p))
			}
			if d := diff(routes(t, tc.want), rs.routes); d != "" {
				t.Errorf("routes (-want +got):\n%s", d)
			}
		})
	}
}

func TestTranslateHTTPRouteParents(t *testing.T) {
	spec := `{parentRefs: [
		{kind: Service, name: a, port: 80},
		{kind: Service, group: core, name: b},
		{kind: Service, name: a, port: 80},
		{name: ingress},
		{kind: Service, name: c, namespace: other},
		{kind: Service, name: d, sectionName: http}],
		rules: [{backendRefs: [{name: v1, port: 80}]}]}`
	var p problems
	rs := testCfg.translateHTTPRoute(httpRoute(t, spec, nil), &p)
	if d := cmp.Diff([]parent{{service: "demo/a", port: 80}, {service: "demo/b"}}, rs.parents, cmp.AllowUnexported(parent{})); d != "" {
		t.Errorf("parents (-want +got):\n%s", d)
	}
	if d := diff([]string{"spec.parentRefs[4].namespace", "spec.parentRefs[5].sectionName"}, fields(&p)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if p.fatal {
		t.Error("ignored parents must not reject the route")
	}
}

func TestTranslateHTTPRouteErrors(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		ann   map[string]string
		field string
	}{
		{"backend of another kind", `{rules: [{backendRefs: [{kind: ServiceEntry, group: networking.istio.io, name: x, port: 80}]}]}`, nil, "spec.rules[0].backendRefs[0].kind"},
		{"backend in another namespace", `{rules: [{backendRefs: [{name: x, namespace: other, port: 80}]}]}`, nil, "spec.rules[0].backendRefs[0].namespace"},
		{"backend without port", `{rules: [{backendRefs: [{name: x}]}]}`, nil, "spec.rules[0].backendRefs[0].port"},
		{"negative weight", `{rules: [{backendRefs: [{name: x, port: 80, weight: -1}]}]}`, nil, "spec.rules[0].backendRefs[0].weight"},
		{"unsupported filter", `{rules: [{filters: [{type: CORS, cors: {}}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].filters[0].type"},
		{"unsupported backend filter", `{rules: [{backendRefs: [{name: x, port: 80, filters: [{type: URLRewrite, urlRewrite: {hostname: h}}]}]}]}`, nil, "spec.rules[0].backendRefs[0].filters[0].type"},
		{"redirect with backends", `{rules: [{filters: [{type: RequestRedirect, requestRedirect: {hostname: h}}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].backendRefs"},
		{"bad redirect status", `{rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 200}}]}]}`, nil, "spec.rules[0].filters[0].requestRedirect.statusCode"},
		{"prefix rewrite without prefix match", `{rules: [{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].filters"},
		{"bad path regex", `{rules: [{matches: [{path: {type: RegularExpression, value: "/(("}}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].matches[0].path.value"},
		{"relative path", `{rules: [{matches: [{path: {value: a}}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].matches[0].path.value"},
		{"bad header regex", `{rules: [{matches: [{headers: [{type: RegularExpression, name: a, value: "[" }]}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].matches[0].headers[0].value"},
		{"bad timeout", `{rules: [{timeouts: {request: 1.5s}, backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].timeouts.request"},
		{"mirror percent and fraction", `{rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: s, port: 80}, percent: 5, fraction: {numerator: 1}}}], backendRefs: [{name: x, port: 80}]}]}`, nil, "spec.rules[0].filters[0].requestMirror"},
		{"fault abort syntax", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationFaultAbort: "50:503"}, "metadata.annotations[weft.dev/fault-abort]"},
		{"fault abort status", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationFaultAbort: "50%:99"}, "metadata.annotations[weft.dev/fault-abort]"},
		{"fault delay percent", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationFaultDelay: "150%:1s"}, "metadata.annotations[weft.dev/fault-delay]"},
		{"fault delay duration", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationFaultDelay: "10%:soon"}, "metadata.annotations[weft.dev/fault-delay]"},
		{"rate limit syntax", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRateLimit: "100"}, "metadata.annotations[weft.dev/ratelimit]"},
		{"rate limit key", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRateLimit: "100/1s;key=ip"}, "metadata.annotations[weft.dev/ratelimit]"},
		{"rate limit zero burst", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRateLimit: "100/1s;burst=0"}, "metadata.annotations[weft.dev/ratelimit]"},
		{"retry attempts", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryAttempts: "many"}, "metadata.annotations[weft.dev/retry-attempts]"},
		{"retry codes", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryCodes: "200"}, "metadata.annotations[weft.dev/retry-codes]"},
		{"retry on", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryOn: "5xx,sometimes"}, "metadata.annotations[weft.dev/retry-on]"},
		{"retry per-try timeout", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryPerTryTimeout: "-1s"}, "metadata.annotations[weft.dev/retry-per-try-timeout]"},
		{"retry budget", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryBudget: "20"}, "metadata.annotations[weft.dev/retry-budget]"},
		{"retry budget option", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryBudget: "20%;max=3"}, "metadata.annotations[weft.dev/retry-budget]"},
		{"retry backoff", `{rules: [{backendRefs: [{name: x, port: 80}]}]}`, map[string]string{AnnotationRetryBackoff: "0s"}, "metadata.annotations[weft.dev/retry-backoff]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			testCfg.translateHTTPRoute(httpRoute(t, tc.spec, tc.ann), &p)
			if !p.fatal {
				t.Fatalf("not rejected; problems %v", fields(&p))
			}
			if d := diff([]string{tc.field}, fields(&p)); d != "" {
				t.Errorf("problem fields (-want +got):\n%s", d)
			}
			for _, e := range p.list {
				if e.Message == "" {
					t.Errorf("%s: empty message", e.Field)
				}
			}
		})
	}
}
