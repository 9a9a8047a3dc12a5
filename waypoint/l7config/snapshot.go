package l7config

import (
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/waypoint/authz"
	"github.com/weftmesh/weft/waypoint/ratelimit"
	"github.com/weftmesh/weft/waypoint/retry"
	"github.com/weftmesh/weft/waypoint/route"
)

// Snapshot is one consistent, compiled L7 configuration. It is immutable
// and safe for concurrent use.
type Snapshot struct {
	// Routes is the compiled router.
	Routes *route.Table
	// Policies is the compiled L7 policy engine; nil (only before any
	// configuration arrived) allows everything.
	Policies *authz.Engine
	// Retries are the routes' compiled retry policies by route name.
	Retries map[string]*retry.Policy
	// Limiters are the routes' rate limiters by route name.
	Limiters map[string]*ratelimit.Limiter

	protocols map[string]map[uint32]l7api.Protocol
	traffic   map[string]*l7api.TrafficPolicy
	// Version counts the configurations applied; 0 is the empty one.
	Version uint64
}

// Protocol returns the declared protocol of port of the Service with
// hostname host; PROTOCOL_UNSPECIFIED means sniff.
func (s *Snapshot) Protocol(host string, port uint16) l7api.Protocol {
	return s.protocols[strings.ToLower(host)][uint32(port)]
}

// Traffic returns the TrafficPolicy of the Service with hostname host, or
// nil.
func (s *Snapshot) Traffic(host string) *l7api.TrafficPolicy {
	return s.traffic[strings.ToLower(host)]
}

// compile builds a Snapshot from the resources held, or fails naming the
// resource and field.
func compile(routes []*l7api.RouteConfig, policies []*l7api.L7Policy, traffic []*l7api.TrafficPolicy, opts []route.Option) (*Snapshot, error) {
	table, err := route.Compile(routes, opts...)
	if err != nil {
		return nil, err
	}
	engine, err := authz.Compile(policies)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Routes: table, Policies: engine,
		Retries: map[string]*retry.Policy{}, Limiters: map[string]*ratelimit.Limiter{},
		protocols: map[string]map[uint32]l7api.Protocol{}, traffic: map[string]*l7api.TrafficPolicy{},
	}
	for _, rc := range routes {
		host := strings.ToLower(rc.GetService().GetHostname())
		if len(rc.GetPortProtocols()) > 0 {
			s.protocols[host] = rc.GetPortProtocols()
		}
		for i, r := range rc.GetRoutes() {
			if r.GetRetry() != nil {
				p, err := retry.New(r.GetRetry())
				if err != nil {
					return nil, resourceErr("RouteConfig", host, fieldf("routes[%d].retry", i), err)
				}
				s.Retries[r.GetName()] = p
			}
			if r.GetRateLimit() != nil {
				l, err := ratelimit.New(r.GetRateLimit())
				if err != nil {
					return nil, resourceErr("RouteConfig", host, fieldf("routes[%d].rate_limit", i), err)
				}
				s.Limiters[r.GetName()] = l
			}
		}
	}
	for _, tp := range traffic {
		s.traffic[strings.ToLower(tp.GetService().GetHostname())] = tp
	}
	return s, nil
}

// empty is the configuration before any has arrived: no routes and no
// policies, so every request goes to the addressed Service.
func empty() *Snapshot {
	s, err := compile(nil, nil, nil, nil)
	if err != nil {
		table, _ := route.Compile(nil)
		s = &Snapshot{Routes: table, Retries: map[string]*retry.Policy{}, Limiters: map[string]*ratelimit.Limiter{}}
	}
	return s
}

// jsonRaw is protojson output embedded as is in the admin dump.
type jsonRaw []byte

// MarshalJSON implements json.Marshaler.
func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }
