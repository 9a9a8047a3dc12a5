package l7

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// FuzzRouteAnnotations checks that any annotation values either reject the
// route or yield settings inside their documented ranges.
func FuzzRouteAnnotations(f *testing.F) {
	f.Add("50%:503", "10%:3s", "100/1s;burst=200;key=source", "3", "502,503", "25ms", "5xx,reset", "500ms", "20%;min=10")
	f.Add("", "", "", "", "", "", "", "", "")
	f.Add("NaN%:503", "1e2%:1ns", "1/0s", "-1", "600", "-5s", "x", "0", "101%")
	f.Fuzz(func(t *testing.T, abort, delay, rate, attempts, codes, backoff, on, perTry, budget string) {
		ann := map[string]string{
			AnnotationFaultAbort: abort, AnnotationFaultDelay: delay, AnnotationRateLimit: rate,
			AnnotationRetryAttempts: attempts, AnnotationRetryCodes: codes, AnnotationRetryBackoff: backoff,
			AnnotationRetryOn: on, AnnotationRetryPerTryTimeout: perTry, AnnotationRetryBudget: budget,
		}
		var p problems
		ex := parseRouteAnnotations(ann, &p)
		if p.fatal {
			return
		}
		if f := ex.fault; f != nil {
			if f.AbortPercent < 0 || f.AbortPercent > 100 || f.DelayPercent < 0 || f.DelayPercent > 100 {
				t.Errorf("fault percent out of range: %v", f)
			}
			if f.Delay != nil && f.Delay.AsDuration() <= 0 {
				t.Errorf("non-positive delay: %v", f)
			}
		}
		if rl := ex.rateLimit; rl != nil && (rl.MaxTokens == 0 || rl.TokensPerFill == 0 || rl.FillInterval.AsDuration() <= 0) {
			t.Errorf("invalid rate limit accepted: %v", rl)
		}
		if r := ex.retry; r != nil {
			if r.BudgetPercent < 0 || r.BudgetPercent > 100 || r.Attempts > 100 {
				t.Errorf("invalid retry accepted: %v", r)
			}
			for _, c := range r.Codes {
				if c < 400 || c > 599 {
					t.Errorf("retry code %d accepted", c)
				}
			}
		}
	})
}

// FuzzTranslateHTTPRoute checks that no HTTPRoute spec makes the
// translation panic, and that an accepted one has a target per route.
func FuzzTranslateHTTPRoute(f *testing.F) {
	f.Add(`{parentRefs: [{kind: Service, name: s}], rules: [{matches: [{path: {type: RegularExpression, value: "/a.*"}}], backendRefs: [{name: v1, port: 80}]}]}`)
	f.Add(`{parentRefs: [{kind: Service, name: s, port: 80}], rules: [{filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch}}}]}]}`)
	f.Add(`{parentRefs: [{kind: Service, name: s}], rules: [{filters: [{type: RequestMirror}, {type: URLRewrite}], timeouts: {request: 0s}}]}`)
	f.Fuzz(func(t *testing.T, spec string) {
		r := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"}}
		if err := yaml.Unmarshal([]byte(spec), &r.Spec); err != nil {
			return
		}
		var p problems
		rs := testCfg.translateHTTPRoute(r, &p)
		if p.fatal {
			return
		}
		for _, rt := range rs.routes {
			n := 0
			if len(rt.Backends) > 0 {
				n++
			}
			if rt.Redirect != nil {
				n++
			}
			if rt.DirectResponse != nil {
				n++
			}
			if n != 1 {
				t.Errorf("route %s has %d targets", rt.Name, n)
			}
		}
	})
}
