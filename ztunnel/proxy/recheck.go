package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

// ErrPolicyChanged is wrapped by the error an open inbound connection ends
// with when a policy change denies it (its access log "error" says so).
var ErrPolicyChanged = errors.New("connection closed due to policy change")

// An inbound connection is authorized once, when it opens; the decision is
// never cached for later connections, but the connection itself lives on.
// As Istio's ztunnel does, every change of the xDS state (policies, or the
// destination workload's policy list or waypoint) re-checks the open
// inbound connections of every pod, and closes those the new state denies:
// the tunnel stream is reset (or the plaintext connection closed) and the
// application's connection is closed. Outbound connections are not
// re-checked here; the destination's ztunnel owns that decision and its
// close reaches the source through the tunnel.

// authzInput is what an inbound connection was authorized on.
type authzInput struct {
	src    netip.Addr
	target netip.AddrPort
	peer   identity.ID
}

// openConn is one authorized inbound connection of a pod.
type openConn struct {
	in    authzInput
	conns [2]net.Conn // the client side and the application side

	once sync.Once
	mu   sync.Mutex
	err  error
}

// revoke closes the connection because of err; only the first call acts.
func (c *openConn) revoke(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		for _, x := range c.conns {
			_ = x.Close()
		}
	})
}

// revoked returns why the connection was revoked, or nil.
func (c *openConn) revoked() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// openConns is the set of one pod's authorized inbound connections. It is
// safe for concurrent use.
type openConns struct {
	mu    sync.Mutex
	conns map[*openConn]struct{}
}

func newOpenConns() *openConns { return &openConns{conns: map[*openConn]struct{}{}} }

// add registers an authorized connection and returns its entry and the
// function that removes it.
func (s *openConns) add(in authzInput, client, app net.Conn) (*openConn, func()) {
	c := &openConn{in: in, conns: [2]net.Conn{client, app}}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

func (s *openConns) snapshot() []*openConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*openConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// admit registers an inbound connection authorized against the state that
// changed is the change channel of, and re-checks it at once if the state
// changed since (the pod's watcher may have run before the registration).
// The connection is revoked when the re-check denies it.
func (p *Proxy) admit(pod *inpod.Pod, set *openConns, changed <-chan struct{}, in authzInput, client, app net.Conn) (*openConn, func()) {
	c, remove := set.add(in, client, app)
	select {
	case <-changed:
		p.recheckOne(pod, c)
	default:
	}
	return c, remove
}

// watchPolicies re-checks the pod's open inbound connections after every
// change of the xDS state until stop is closed.
func (p *Proxy) watchPolicies(pod *inpod.Pod, set *openConns, stop <-chan struct{}) {
	changed := p.cfg.Store.Changed()
	for {
		select {
		case <-changed:
		case <-stop:
			return
		}
		changed = p.cfg.Store.Changed()
		for _, c := range set.snapshot() {
			p.recheckOne(pod, c)
		}
	}
}

// recheckOne authorizes c again against the current state and revokes it
// when denied. A destination workload that has left the state keeps its
// connections: it is being removed, and its pod's drain ends them.
func (p *Proxy) recheckOne(pod *inpod.Pod, c *openConn) {
	dst := p.cfg.Store.WorkloadByIP(wds.NetAddr{Network: p.cfg.Network, IP: c.in.target.Addr()})
	if dst == nil || dst.Name() != pod.Name || dst.Namespace() != pod.Namespace {
		return
	}
	if _, err := p.check(dst, c.in.src, c.in.target, c.in.peer); err != nil {
		p.log.Info("closing connection denied after a policy change", "pod", pod.Namespace+"/"+pod.Name,
			"src", c.in.src.String(), "dst", c.in.target.String(), "peer", c.in.peer.String(), "reason", err.Error())
		c.revoke(fmt.Errorf("%w: %w", ErrPolicyChanged, err))
	}
}
