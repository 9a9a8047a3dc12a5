package route_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/waypoint/route"
)

// A canary: requests with "x-version: v2" go to v2, the rest are split
// 90/10; the waypoint applies the decision's rewrites before forwarding.
func ExampleTable_Match() {
	reviews := &l7api.ServiceRef{Namespace: "demo", Name: "reviews", Hostname: "reviews.demo.svc.cluster.local"}
	v1 := &l7api.ServiceRef{Namespace: "demo", Name: "reviews-v1", Hostname: "reviews-v1.demo.svc.cluster.local"}
	v2 := &l7api.ServiceRef{Namespace: "demo", Name: "reviews-v2", Hostname: "reviews-v2.demo.svc.cluster.local"}
	table, err := route.Compile([]*l7api.RouteConfig{{
		Service: reviews,
		Routes: []*l7api.Route{
			{
				Name:     "HTTPRoute/demo/reviews/0",
				Match:    &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{{Name: "x-version", Value: "v2"}}},
				Backends: []*l7api.WeightedBackend{{Service: v2, Port: 9080, Weight: 1}},
				RequestHeaders: []*l7api.HeaderModifier{
					{Op: l7api.HeaderModifier_SET, Name: "x-routed-by", Value: "waypoint"},
				},
			},
			{
				Name:     "HTTPRoute/demo/reviews/1",
				Backends: []*l7api.WeightedBackend{{Service: v1, Port: 9080, Weight: 90}, {Service: v2, Port: 9080, Weight: 10}},
			},
		},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("GET", "/reviews/1", nil)
	r.Header.Set("X-Version", "v2")
	d := table.Match("reviews.demo.svc.cluster.local", 9080, r)
	d.ApplyRequest(r)
	fmt.Println(d.Route, d.Action, d.Backend.Service.GetName(), d.Backend.Port, r.Header.Get("X-Routed-By"))
	// Output: HTTPRoute/demo/reviews/0 forward reviews-v2 9080 waypoint
}
