package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/telemetry"
)

// Certificates provides workload certificates; certmgr.Manager implements
// it.
type Certificates interface {
	// Track and Forget bracket the life of a workload that uses id.
	Track(id identity.ID)
	Forget(id identity.ID)
	// Get returns id's current certificate, waiting for the first one
	// until ctx ends.
	Get(ctx context.Context, id identity.ID) (*identity.Certificate, error)
	// Roots returns the trust anchors.
	Roots() *x509.CertPool
}

// TunnelRequest asks for one outbound HBONE stream.
type TunnelRequest struct {
	// Pod is the source pod: the TCP connection is made from its netns.
	Pod *inpod.Pod
	// Source is the identity the tunnel presents.
	Source identity.ID
	// SourceIP is the client pod's address (part of the pool key).
	SourceIP netip.Addr
	// Addr is the tunnel's TCP endpoint (an endpoint's or waypoint's 15008).
	Addr netip.AddrPort
	// Expected are the identities the server may present.
	Expected []identity.ID
	// Authority is the CONNECT :authority, "ip:port" of the target.
	Authority string
	// Header carries forwarded and baggage.
	Header http.Header
}

// ErrTunnelDenied is wrapped by Tunnels.Connect errors when the destination
// refused the CONNECT by policy (HTTP 401).
var ErrTunnelDenied = errors.New("tunnel denied by destination policy")

// Tunnels opens outbound HBONE streams (pooled); the returned conn supports
// CloseWrite for half-close.
type Tunnels interface {
	Connect(ctx context.Context, req TunnelRequest) (net.Conn, error)
}

// podForgetter is implemented by Tunnels that remember pods (to dial from
// their netns); ServePod tells them when a pod is gone.
type podForgetter interface {
	ForgetPod(pod *inpod.Pod)
}

// InboundRequest is one CONNECT received on a pod's 15008.
type InboundRequest struct {
	// Peer is the client's verified identity.
	Peer identity.ID
	// PeerAddr is the tunnel connection's remote address.
	PeerAddr netip.AddrPort
	// Authority is the CONNECT :authority.
	Authority string
	// Header carries forwarded, baggage and traceparent.
	Header http.Header
	// Transport is the tunnel's transport as the connection table shows
	// it: empty for HBONE over HTTP/2, "HBONE_QUIC" for HTTP/3.
	Transport string
}

// InboundStream answers one CONNECT.
type InboundStream interface {
	// Accept answers 200 and returns the tunnel.
	Accept() (net.Conn, error)
	// Reject answers status (401, 400, 503) and ends the stream.
	Reject(status int)
}

// InboundHandler is called for every CONNECT on a pod's 15008.
type InboundHandler func(ctx context.Context, req InboundRequest, s InboundStream)

// InboundServer serves HBONE on a pod's 15008 listener with the TLS
// certificate of identity id until the listener is closed.
type InboundServer interface {
	Serve(ctx context.Context, ln net.Listener, id identity.ID, h InboundHandler) error
}

// Config configures a Proxy.
type Config struct {
	Store   *wds.Store
	Certs   Certificates
	Tunnels Tunnels
	Inbound InboundServer
	// Recorder records metrics, access logs and open connections; nil
	// records nothing.
	Recorder *telemetry.Recorder
	// TrustDomain of the mesh; empty means cluster.local.
	TrustDomain string
	// ClusterID is reported in baggage.
	ClusterID string
	// Network is this node's network.
	Network string
	// ConnectTimeout bounds dialling an upstream (default 5 s).
	ConnectTimeout time.Duration
	// ReadyTimeout bounds the wait for a pod's certificate and for the
	// first xDS state before a connection is refused (default 5 s).
	ReadyTimeout time.Duration
	// OnDemandTimeout bounds an on-demand lookup of an unknown destination
	// (default 0: unknown destinations are outside the mesh at once).
	OnDemandTimeout time.Duration
	// PreserveSource makes inbound connections to the application come from
	// the client's address (IP_TRANSPARENT); it needs the in-pod routing
	// rules. Without it they come from the pod's own address.
	PreserveSource bool
	// MaxConnsPerPod caps a pod's concurrent proxied connections in each
	// direction (outbound; inbound plaintext and HBONE together); zero
	// means DefaultMaxConnsPerPod. See caps.go.
	MaxConnsPerPod int
	// MaxConnsPerNode caps the concurrent proxied connections of all pods,
	// both directions; zero means DefaultMaxConnsPerNode.
	MaxConnsPerNode int
	Log             *slog.Logger
}

// Proxy is the data path; it implements inpod.Handler.
type Proxy struct {
	cfg  Config
	log  *slog.Logger
	caps *connCaps
}

var _ inpod.Handler = (*Proxy)(nil)

// New validates cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Store == nil || cfg.Certs == nil || cfg.Tunnels == nil || cfg.Inbound == nil {
		return nil, errors.New("proxy: Store, Certs, Tunnels and Inbound are required")
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = identity.DefaultTrustDomain
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 5 * time.Second
	}
	if cfg.MaxConnsPerPod < 0 || cfg.MaxConnsPerNode < 0 {
		return nil, errors.New("proxy: MaxConnsPerPod and MaxConnsPerNode must not be negative")
	}
	if cfg.MaxConnsPerPod == 0 {
		cfg.MaxConnsPerPod = DefaultMaxConnsPerPod
	}
	if cfg.MaxConnsPerNode == 0 {
		cfg.MaxConnsPerNode = DefaultMaxConnsPerNode
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg, log: cfg.Log, caps: newConnCaps(cfg.MaxConnsPerPod, cfg.MaxConnsPerNode, cfg.Recorder)}, nil
}

// podIdentity is the identity ztunnel uses for a pod, from its ZDS info.
func (p *Proxy) podIdentity(pod *inpod.Pod) (identity.ID, error) {
	sa := pod.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return identity.NewID(p.cfg.TrustDomain, pod.Namespace, sa)
}

// OpenConns returns how many proxied connections the node holds (counted
// against MaxConnsPerNode).
func (p *Proxy) OpenConns() int64 { return p.caps.open() }

// ServePod serves pod's three listeners until they are closed and every
// connection has ended.
func (p *Proxy) ServePod(pod *inpod.Pod) {
	log := p.log.With("pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID)
	id, err := p.podIdentity(pod)
	if err != nil {
		log.Error("pod has no valid identity; refusing its traffic", "error", err)
	} else {
		p.cfg.Certs.Track(id)
		defer p.cfg.Certs.Forget(id)
	}
	if f, ok := p.cfg.Tunnels.(podForgetter); ok {
		defer f.ForgetPod(pod)
	}
	ctx := pod.Context()
	caps := p.caps.pod(log)
	// The pod's open inbound connections, re-checked on every state change
	// until every listener's connections have ended (recheck.go).
	open := newOpenConns()
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		p.watchPolicies(pod, open, stopWatch)
	}()
	defer func() { close(stopWatch); <-watched }()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		p.acceptLoop(ctx, pod, pod.Listeners.Outbound, func(c net.Conn) {
			if s := caps.acquire("outbound"); s != nil {
				defer s.release()
				p.outbound(ctx, pod, id, c)
			}
		})
	}()
	go func() {
		defer wg.Done()
		p.acceptLoop(ctx, pod, pod.Listeners.InboundPlain, func(c net.Conn) {
			if s := caps.acquire("inbound"); s != nil {
				defer s.release()
				p.inboundPlain(ctx, pod, open, c)
			}
		})
	}()
	go func() {
		defer wg.Done()
		if id.IsZero() {
			p.acceptLoop(ctx, pod, pod.Listeners.InboundHBONE, func(c net.Conn) {})
			return
		}
		ln := &trackingListener{Listener: pod.Listeners.InboundHBONE, pod: pod}
		err := p.cfg.Inbound.Serve(ctx, ln, id, func(ctx context.Context, req InboundRequest, s InboundStream) {
			slot := caps.acquire("inbound")
			if slot == nil {
				s.Reject(http.StatusServiceUnavailable)
				return
			}
			defer slot.release()
			p.inboundHBONE(ctx, pod, id, open, req, s)
		})
		if err != nil && !errors.Is(err, net.ErrClosed) {
			log.Warn("hbone server ended", "error", err)
		}
		ln.wait()
	}()
	wg.Wait()
}

// acceptLoop accepts until ln is closed, running handle for each connection
// on its own goroutine, tracked on the pod so a drain can wait for it. The
// accepted connections close abortively unless they end cleanly (see
// linger.go): handle returning without a clean splice resets them.
func (p *Proxy) acceptLoop(ctx context.Context, pod *inpod.Pod, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		abortOnClose(c)
		untrack, ok := pod.Track(c)
		if !ok {
			_ = c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer untrack()
			defer func() { _ = c.Close() }()
			handle(c)
		}()
	}
}

// trackingListener tracks every accepted connection on the pod, for
// listeners whose connections another server owns.
type trackingListener struct {
	net.Listener
	pod *inpod.Pod
	wg  sync.WaitGroup
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		untrack, ok := l.pod.Track(c)
		if !ok {
			_ = c.Close()
			continue
		}
		l.wg.Add(1)
		return &trackedConn{Conn: c, done: func() { untrack(); l.wg.Done() }}, nil
	}
}

func (l *trackingListener) wait() { l.wg.Wait() }

type trackedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// SyscallConn exposes the accepted socket, so that pkg/hbone's data path
// reads and writes it with raw system calls as it does outbound sockets.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}
