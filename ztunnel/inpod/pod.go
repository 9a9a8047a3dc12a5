package inpod

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
)

// Pod is one enrolled pod: its identity from ZDS, its network namespace, its
// listeners and the connections ztunnel carries for it. It is safe for
// concurrent use.
type Pod struct {
	// UID is the pod's ZDS uid (the Kubernetes pod UID).
	UID string
	// Name, Namespace and ServiceAccount come from the ZDS WorkloadInfo.
	Name, Namespace, ServiceAccount string
	// Listeners are open inside the pod's netns until the pod drains.
	Listeners Listeners

	ns      *netns.NetNS
	sockets socketFactory
	added   time.Time

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	conns    map[io.Closer]struct{}
	holds    map[io.Closer]struct{} // servers draining on their own (Hold)
	draining chan struct{}
	drained  bool
	idle     chan struct{} // closed when draining and no connections or holds remain
	served   chan struct{} // closed when the handler's ServePod returned
}

func newPod(uid string, info *zdsapi.WorkloadInfo, ns *netns.NetNS, sockets socketFactory) *Pod {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pod{
		UID: uid, Name: info.GetName(), Namespace: info.GetNamespace(), ServiceAccount: info.GetServiceAccount(),
		ns: ns, sockets: sockets, added: time.Now(), ctx: ctx, cancel: cancel,
		conns: map[io.Closer]struct{}{}, holds: map[io.Closer]struct{}{},
		draining: make(chan struct{}), idle: make(chan struct{}), served: make(chan struct{}),
	}
	p.ctx = context.WithValue(ctx, podKey{}, p)
	return p
}

type podKey struct{}

// FromContext returns the pod whose Context ctx is or derives from, or
// nil: a server handed the pod's context finds the pod with it.
func FromContext(ctx context.Context) *Pod {
	p, _ := ctx.Value(podKey{}).(*Pod)
	return p
}

// NetNS returns the pod's network namespace handle; it stays owned by the
// pod and is closed after the pod is removed.
func (p *Pod) NetNS() *netns.NetNS { return p.ns }

// Context is cancelled when the pod's connections are force-closed at the
// end of a drain. FromContext finds the pod from it (or a context derived
// from it).
func (p *Pod) Context() context.Context { return p.ctx }

// Draining is closed when the pod starts draining: its listeners are closed
// and no new connections should start.
func (p *Pod) Draining() <-chan struct{} { return p.draining }

// ListenPacket opens a UDP socket on an ephemeral port inside the pod's
// netns, marked so the pod's redirect rules let its packets out: the
// socket of an outgoing QUIC connection on behalf of the pod. dst picks
// the address family.
func (p *Pod) ListenPacket(ctx context.Context, dst netip.Addr) (net.PacketConn, error) {
	wild := netip.IPv4Unspecified()
	if dst.Unmap().Is6() {
		wild = netip.IPv6Unspecified()
	}
	return p.sockets.ListenPacket(ctx, netip.AddrPortFrom(wild, 0))
}

// Dial connects to dst from inside the pod's netns with a marked socket, so
// the pod's redirect rules let it out: ztunnel's outgoing connections on
// behalf of the pod.
func (p *Pod) Dial(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	return p.sockets.Dial(ctx, netip.Addr{}, dst)
}

// DialFrom is Dial with the socket bound to the foreign source address src
// (IP_TRANSPARENT), so the application sees the original client address.
func (p *Pod) DialFrom(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	return p.sockets.Dial(ctx, src, dst)
}

// Track registers c as one of the pod's connections so that a drain can
// wait for it and, at the deadline, close it. It returns false (and does
// not track c) when the pod is already draining. Call the returned untrack
// when the connection ends.
func (p *Pod) Track(c io.Closer) (untrack func(), ok bool) {
	return p.register(p.conns, c)
}

// Hold keeps the pod's drain, and so the release of its QUIC socket, waiting
// for a server that says goodbye on its own (the QUIC server: GOAWAY, then
// CONNECTION_CLOSE to its peers, which needs the socket) until the returned
// release is called, as a connection does, without counting as one. At the
// drain deadline c is closed; its Close must not wait for the pod's
// connections (it may be called while the pod closes them). It returns
// false (and holds nothing) when the pod is already draining.
func (p *Pod) Hold(c io.Closer) (release func(), ok bool) {
	return p.register(p.holds, c)
}

func (p *Pod) register(set map[io.Closer]struct{}, c io.Closer) (func(), bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drained {
		return func() {}, false
	}
	set[c] = struct{}{}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(set, c)
		if p.drained && len(p.conns) == 0 && len(p.holds) == 0 {
			select {
			case <-p.idle:
			default:
				close(p.idle)
			}
		}
	}, true
}

// Connections returns how many connections the pod has.
func (p *Pod) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// drain closes the listeners, waits for the pod's connections to finish
// until ctx ends, then closes whatever remains. It is idempotent.
func (p *Pod) drain(ctx context.Context) {
	p.mu.Lock()
	if !p.drained {
		p.drained = true
		p.Listeners.Close()
		close(p.draining)
		if len(p.conns) == 0 && len(p.holds) == 0 {
			close(p.idle)
		}
	}
	p.mu.Unlock()
	select {
	case <-p.idle:
	case <-ctx.Done():
	}
	// Close outside the lock: a connection's Close may untrack it (which
	// takes the lock), as the tunnel's and the proxy's do.
	p.mu.Lock()
	left := make([]io.Closer, 0, len(p.conns)+len(p.holds))
	for c := range p.conns {
		left = append(left, c)
	}
	for c := range p.holds {
		left = append(left, c)
	}
	p.mu.Unlock()
	for _, c := range left {
		_ = c.Close()
	}
	p.cancel()
}

// shutdown drains the pod (its connections until ctx ends), waits for
// its handler, and releases its sockets and netns.
func (p *Pod) shutdown(ctx context.Context) {
	p.drain(ctx)
	p.waitServed()
	p.release()
}

// releaseGrace bounds how long a drained pod's release waits for its
// handler to return (it should at once: its context is done).
const releaseGrace = 5 * time.Second

// waitServed waits for the handler's ServePod to return, so that no
// server still uses the pod's sockets when they are released; a handler
// that does not return within releaseGrace is not waited for further.
func (p *Pod) waitServed() {
	t := time.NewTimer(releaseGrace)
	defer t.Stop()
	select {
	case <-p.served:
	case <-t.C:
	}
}

// release frees the pod's reserved sockets, its QUIC socket and its netns
// handle. Callers wait for the handler first (waitServed): closing the QUIC
// socket under its server would cut the server's goodbye to its peers.
func (p *Pod) release() {
	if p.Listeners.InboundQUIC != nil {
		_ = p.Listeners.InboundQUIC.Close()
	}
	p.sockets.Close()
	_ = p.ns.Close()
}

// State is a pod's entry in the admin workloadState dump.
type State struct {
	UID            string    `json:"uid"`
	Name           string    `json:"name"`
	Namespace      string    `json:"namespace"`
	ServiceAccount string    `json:"serviceAccount"`
	State          string    `json:"state"`
	Connections    int       `json:"connections"`
	Added          time.Time `json:"added"`
}

func (p *Pod) state() State {
	st := "up"
	select {
	case <-p.draining:
		st = "draining"
	default:
	}
	return State{UID: p.UID, Name: p.Name, Namespace: p.Namespace, ServiceAccount: p.ServiceAccount,
		State: st, Connections: p.Connections(), Added: p.added}
}
