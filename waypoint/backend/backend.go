package backend

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/waypoint/balance"
	"github.com/weftmesh/weft/waypoint/breaker"
	"github.com/weftmesh/weft/waypoint/retry"
)

// Backend is the state of one backend Service. It is safe for concurrent
// use.
type Backend struct {
	// Hostname is the Service's hostname.
	Hostname string
	// Pool enforces the connection pool limits for multiplexed upstreams
	// (HTTP/2, gRPC) and TCP flows: max_requests on active requests
	// (Acquire) and max_connections on connections (AcquireConn, taken by
	// the upstream transports and the TCP proxy). Never nil.
	Pool *breaker.Pool
	// HTTP1 enforces them for HTTP/1.1 upstreams (and upgrades), where
	// every active request holds a connection of its own: Acquire bounds
	// concurrent requests by max_connections, queues the excess up to
	// max_pending_requests (in FIFO order, leaving when the request's
	// context ends) and sheds the rest, and max_requests applies too. Its
	// requests take no connection slot, so idle keep-alive connections
	// hold none. Never nil.
	HTTP1 *breaker.Pool
	// Outliers ejects failing endpoints; nil ejects nothing.
	Outliers *breaker.Outliers
	// Balancer picks endpoints, skipping ejected ones.
	Balancer balance.Balancer

	// policy is the TrafficPolicy b was built from; an equal policy of a
	// later configuration replaces the pointer so the next comparison is
	// cheap.
	policy  atomic.Pointer[l7api.TrafficPolicy]
	budgets sync.Map // route name -> *retry.Budget

	epMu sync.RWMutex
	eps  map[epListKey][]netip.AddrPort // endpoint lists as last told
}

// epListKey names one of a backend's endpoint lists: a Service has one per
// target port and address family.
type epListKey struct {
	port uint16
	ipv6 bool
}

// SetEndpoints tells the backend's outlier detection the current endpoint
// list addrs of the Service's port (as the proxy found it for a request),
// so that max_ejection_percent counts every endpoint, not only the failing
// ones. The union of the lists of all ports and address families seen is
// the base. An unchanged list costs a comparison without allocating; call
// it with each list the proxy picks from.
func (b *Backend) SetEndpoints(port uint16, addrs []netip.AddrPort) {
	if b.Outliers == nil || len(addrs) == 0 {
		return
	}
	key := epListKey{port: port, ipv6: addrs[0].Addr().Is6() && !addrs[0].Addr().Is4In6()}
	b.epMu.RLock()
	same := slices.Equal(b.eps[key], addrs)
	b.epMu.RUnlock()
	if same {
		return
	}
	b.epMu.Lock()
	defer b.epMu.Unlock()
	if slices.Equal(b.eps[key], addrs) {
		return
	}
	if b.eps == nil {
		b.eps = map[epListKey][]netip.AddrPort{}
	}
	b.eps[key] = slices.Clone(addrs)
	var all []netip.AddrPort
	for _, l := range b.eps {
		all = append(all, l...)
	}
	b.Outliers.SetEndpoints(all)
}

// Budget returns the retry budget of requests to b on route, made from p on
// first use.
func (b *Backend) Budget(route string, p *retry.Policy) *retry.Budget {
	if v, ok := b.budgets.Load(route); ok {
		return v.(*retry.Budget)
	}
	v, _ := b.budgets.LoadOrStore(route, p.NewBudget())
	return v.(*retry.Budget)
}

// Requests returns the pool a request takes its slot from: Pool for a
// multiplexed (HTTP/2) upstream, HTTP1 otherwise.
func (b *Backend) Requests(multiplexed bool) *breaker.Pool {
	if multiplexed {
		return b.Pool
	}
	return b.HTTP1
}

func newBackend(host string, tp *l7api.TrafficPolicy) *Backend {
	cp := tp.GetConnectionPool()
	b := &Backend{Hostname: host, Pool: breaker.NewPool(cp),
		HTTP1:    breaker.NewPool(cp, breaker.WithOneRequestPerConnection()),
		Outliers: breaker.NewOutliers(tp.GetOutlierDetection())}
	b.policy.Store(tp)
	var opts []balance.Option
	if b.Outliers != nil {
		opts = append(opts, balance.WithSkip(b.Outliers.Ejected))
	}
	b.Balancer = balance.New(tp.GetLoadBalancer(), opts...)
	return b
}

// Registry holds the Backends by hostname. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]*Backend
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{m: map[string]*Backend{}} }

// Get returns the Backend of host under traffic policy tp (nil for none).
// The same Backend is returned while tp stays equal; a changed policy
// starts afresh.
func (r *Registry) Get(host string, tp *l7api.TrafficPolicy) *Backend {
	host = strings.ToLower(host)
	r.mu.RLock()
	b := r.m[host]
	r.mu.RUnlock()
	if b != nil && b.policy.Load() == tp {
		return b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b = r.m[host]; b != nil && proto.Equal(b.policy.Load(), tp) {
		b.policy.Store(tp)
		return b
	}
	b = newBackend(host, tp)
	r.m[host] = b
	return b
}

// Stats reports each backend's connections, active and pending requests.
// An active HTTP/1.1 request counts as a connection too.
func (r *Registry) Stats() map[string][3]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string][3]int64, len(r.m))
	for h, b := range r.m {
		c, a, p := b.Pool.Stats()
		_, a1, p1 := b.HTTP1.Stats()
		out[h] = [3]int64{c + a1, a + a1, p + p1}
	}
	return out
}

// Pick chooses one of addrs with the backend's balancer. It never returns
// an invalid address for a non-empty addrs, and done is never nil.
func (b *Backend) Pick(addrs []netip.AddrPort) (netip.AddrPort, balance.Done) {
	ep, done := b.Balancer.Pick(addrs)
	if done == nil {
		done = func(time.Duration, error) {}
	}
	if !ep.IsValid() && len(addrs) > 0 {
		ep = addrs[0]
	}
	return ep, done
}
