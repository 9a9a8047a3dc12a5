package l7

import (
	"github.com/weftmesh/weft/pkg/api/l7api"
	"google.golang.org/protobuf/proto"
)

func cloneRoute(r *l7api.Route) *l7api.Route { return proto.Clone(r).(*l7api.Route) }

func cloneRetry(r *l7api.RetryPolicy) *l7api.RetryPolicy {
	return proto.Clone(r).(*l7api.RetryPolicy)
}
