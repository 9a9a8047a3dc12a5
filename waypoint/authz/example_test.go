package authz_test

import (
	"fmt"
	"net/netip"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/waypoint/authz"
)

// GET is allowed for callers in the demo namespace; DELETE is denied.
func ExampleEngine_Evaluate() {
	gw := []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_GATEWAY, Name: "waypoint"}}
	engine, err := authz.Compile([]*l7api.L7Policy{
		{Name: "allow-get", Namespace: "demo", Targets: gw, Action: l7api.Action_ALLOW, Rules: []*l7api.L7Rule{{
			From: []*l7api.Source{{Namespaces: []string{"demo"}}},
			To:   []*l7api.Operation{{Methods: []string{"GET"}, Paths: []string{"/api/{**}"}}},
		}}},
		{Name: "deny-delete", Namespace: "demo", Targets: gw, Action: l7api.Action_DENY, Rules: []*l7api.L7Rule{{
			To: []*l7api.Operation{{Methods: []string{"DELETE"}}},
		}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, method := range []string{"GET", "DELETE"} {
		v := engine.Evaluate(&authz.Request{
			Gateway:         "demo/waypoint",
			Service:         "demo/reviews",
			SourcePrincipal: "spiffe://cluster.local/ns/demo/sa/productpage",
			SourceIP:        netip.MustParseAddr("10.244.1.7"),
			Host:            "reviews.demo.svc.cluster.local:9080",
			Method:          method,
			Path:            "/api/reviews/1",
			Port:            9080,
		})
		fmt.Println(method, v.Allow, v.Policy)
	}
	// Output:
	// GET true demo/allow-get
	// DELETE false demo/deny-delete
}
