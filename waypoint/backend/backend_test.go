package backend

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func TestRegistryKeepsStateWhilePolicyIsEqual(t *testing.T) {
	r := NewRegistry()
	tp := &l7api.TrafficPolicy{ConnectionPool: &l7api.ConnectionPool{MaxRequests: 1}}
	a := r.Get("echo.demo.svc.cluster.local", tp)
	if b := r.Get("ECHO.demo.svc.cluster.local", proto.Clone(tp).(*l7api.TrafficPolicy)); b != a {
		t.Error("an equal policy from a new configuration replaced the backend state")
	}
	if b := r.Get("echo.demo.svc.cluster.local", &l7api.TrafficPolicy{ConnectionPool: &l7api.ConnectionPool{MaxRequests: 2}}); b == a {
		t.Error("a changed policy kept the old backend state")
	}
	if b := r.Get("other.demo.svc.cluster.local", nil); b == nil || b.Balancer == nil || b.Pool == nil {
		t.Errorf("backend without a policy: %+v", b)
	}
}
