//go:build e2e

package controlplane

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/pkg/identity"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
)

const l7NS = "cp-l7"

// l7View holds the L7 resources a waypoint-like client received.
type l7View struct {
	mu   sync.Mutex
	have map[string]proto.Message // "<type> <name>"
}

// Apply implements xdsclient.Handler.
func (v *l7View) Apply(typeURL string, rs []*discoveryv3.Resource, removed []string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range rs {
		m, err := r.GetResource().UnmarshalNew()
		if err != nil {
			return err
		}
		v.have[typeURL+" "+r.Name] = m
	}
	for _, n := range removed {
		delete(v.have, typeURL+" "+n)
	}
	return nil
}

func (v *l7View) get(typeURL, name string) proto.Message {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.have[typeURL+" "+name]
}

// testL7 checks that istiod-lite turns HTTPRoutes, DestinationRules and
// AuthorizationPolicies with targetRefs into the weft.l7.v1 resources a
// waypoint receives over delta xDS, and reports bad input on the object.
func testL7(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n1 := e.l.Nodes()[0].Name
	if err := e.l.Apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + l7NS + "}\n---" + sleeper(l7NS, "wp-client", "waypoint", n1, false) + `---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: ` + l7NS + `}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
`); err != nil {
		t.Fatal(err)
	}
	client := e.waitPods(t, l7NS, "app=wp-client", 1, 2*time.Minute)[0]
	roots := e.rootPool(t)
	istiod := e.waitIstiod(t, 2)[0]
	tok, err := e.token(ctx, l7NS, "waypoint", audience, &client)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := issue(ctx, e.caClient(t, podAddr(istiod, "15012"), roots, tok, false), identity.MustParseID("spiffe://cluster.local/ns/"+l7NS+"/sa/waypoint"))
	if err != nil {
		t.Fatal(err)
	}
	v := &l7View{have: map[string]proto.Message{}}
	c := xdsclient.NewClient(xdsclient.Config{
		Address: podAddr(istiod, "15012"), TLS: xdsTLS(cert, roots),
		Node:        &corev3.Node{Id: "waypoint~" + client.Status.PodIP + "~" + client.Name + "." + l7NS + "~" + l7NS + ".svc.cluster.local"},
		Types:       []string{l7api.RouteConfigType, l7api.TrafficPolicyType, l7api.L7PolicyType},
		Handler:     v,
		DialOptions: []grpc.DialOption{e.dialer()},
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-c.Synced():
	case <-time.After(30 * time.Second):
		t.Fatalf("xDS client not synced: %+v", c.Status())
	}
	await := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const host = "reviews." + l7NS + ".svc.cluster.local"
	routeConfig := func() *l7api.RouteConfig { rc, _ := v.get(l7api.RouteConfigType, host).(*l7api.RouteConfig); return rc }

	t.Run("HTTPRoute becomes a RouteConfig and gets status", func(t *testing.T) {
		start := time.Now()
		if err := e.l.Apply(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: ` + l7NS + `
  annotations: {weft.dev/retry-attempts: "3", weft.dev/retry-on: "5xx"}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches: [{headers: [{name: x-version, value: v2}]}]
    backendRefs: [{name: reviews, port: 9080}]
  - backendRefs: [{name: reviews, port: 9080, weight: 90}, {name: reviews, port: 9080, weight: 10}]
`); err != nil {
			t.Fatal(err)
		}
		await(t, "RouteConfig with two routes", func() bool { return len(routeConfig().GetRoutes()) == 2 })
		t.Logf("RouteConfig %s at the client %s after apply", host, time.Since(start).Round(time.Millisecond))
		rc := routeConfig()
		if r := rc.Routes[0]; r.GetName() != "HTTPRoute/"+l7NS+"/reviews/0" || r.GetPort() != 9080 || r.GetRetry().GetAttempts() != 3 {
			t.Errorf("first route = %v", r)
		}
		if rc.GetPortProtocols()[9080] != l7api.Protocol_HTTP {
			t.Errorf("port protocols = %v", rc.GetPortProtocols())
		}
		await(t, "Accepted status", func() bool {
			out, err := e.l.Kubectl("get", "httproute", "-n", l7NS, "reviews", "-o", `jsonpath={.status.parents[?(@.controllerName=="istio.io/mesh-controller")].conditions[?(@.type=="Accepted")].status}`)
			return err == nil && strings.TrimSpace(out) == "True"
		})
	})

	t.Run("a malformed annotation is rejected with an event and status", func(t *testing.T) {
		if err := e.l.Apply(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: broken
  namespace: ` + l7NS + `
  annotations: {weft.dev/fault-abort: "lots"}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews, port: 9080}]}]
`); err != nil {
			t.Fatal(err)
		}
		await(t, "Warning event naming the annotation", func() bool {
			evs, err := e.cs.CoreV1().Events(l7NS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=broken"})
			if err != nil {
				return false
			}
			for _, ev := range evs.Items {
				if ev.Reason == "InvalidWaypointConfig" && strings.Contains(ev.Message, "metadata.annotations[weft.dev/fault-abort]") {
					return true
				}
			}
			return false
		})
		await(t, "Accepted=False", func() bool {
			out, err := e.l.Kubectl("get", "httproute", "-n", l7NS, "broken", "-o", `jsonpath={.status.parents[0].conditions[?(@.type=="Accepted")].status}`)
			return err == nil && strings.TrimSpace(out) == "False"
		})
		if n := len(routeConfig().GetRoutes()); n != 2 {
			t.Errorf("the broken route changed the RouteConfig: %d routes", n)
		}
	})

	t.Run("DestinationRule and targetRef policy", func(t *testing.T) {
		if err := e.l.Apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: ` + l7NS + `}
spec:
  host: reviews
  trafficPolicy:
    connectionPool: {http: {http2MaxRequests: 10}}
    loadBalancer: {simple: ROUND_ROBIN}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: ` + l7NS + `}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
`); err != nil {
			t.Fatal(err)
		}
		await(t, "TrafficPolicy", func() bool {
			tp, _ := v.get(l7api.TrafficPolicyType, host).(*l7api.TrafficPolicy)
			return tp.GetConnectionPool().GetMaxRequests() == 10 && tp.GetLoadBalancer().GetPolicy() == l7api.LoadBalancer_ROUND_ROBIN
		})
		await(t, "L7Policy", func() bool {
			p, _ := v.get(l7api.L7PolicyType, l7NS+"/allow-get").(*l7api.L7Policy)
			return len(p.GetRules()) == 1 && p.GetRules()[0].GetTo()[0].GetMethods()[0] == "GET"
		})
	})

	t.Run("deleting the route removes its routes", func(t *testing.T) {
		if _, err := e.l.Kubectl("delete", "httproute", "-n", l7NS, "reviews", "broken"); err != nil {
			t.Fatal(err)
		}
		await(t, "RouteConfig without routes", func() bool { rc := routeConfig(); return rc != nil && len(rc.GetRoutes()) == 0 })
	})
}
