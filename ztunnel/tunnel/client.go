package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
)

// Config configures Client and Server.
type Config struct {
	// Certs provides the workload certificates and trust anchors.
	Certs proxy.Certificates
	// TrustDomain peers must be in; empty means cluster.local.
	TrustDomain string
	// Limits tunes HBONE connections; zero fields take pkg/hbone's defaults.
	Limits hbone.Limits
	// QUIC enables HBONE over QUIC: the Server serves each pod's UDP 15008
	// socket (inpod.Listeners.InboundQUIC), and the Client dials QUIC to
	// destinations that advertise it (needs Store).
	QUIC bool
	// Store tells the Client which destinations advertise QUIC
	// (wds.Workload.QUIC, looked up by the tunnel address on Network) and
	// finds a pod's workload for ConnectUDP. nil: every tunnel is HTTP/2.
	Store *wds.Store
	// Network is this node's network, for Store lookups.
	Network string
	// ClusterID is the cluster part of workload uids, for ConnectUDP's
	// source lookup (default "Kubernetes").
	ClusterID string
	// FallbackPeriod is how long a destination whose QUIC handshake failed
	// is reached over HTTP/2 (default hbone3.DefaultFallbackPeriod).
	FallbackPeriod time.Duration
	// QUICHandshakeTimeout bounds a QUIC handshake, so how long the first
	// connection to a destination whose UDP is blocked waits before
	// falling back (default hbone3.DefaultHandshakeTimeout).
	QUICHandshakeTimeout time.Duration
	// Metrics counts tunnels by transport; nil records nothing.
	Metrics *Metrics
	// HandleUDP serves each CONNECT-UDP request that arrives on a pod's
	// QUIC listener (UDP 15008); pod is the destination pod whose listener
	// received it. nil refuses CONNECT-UDP with 501.
	HandleUDP func(ctx context.Context, pod *inpod.Pod, req *hbone3.UDPRequest)
	Log       *slog.Logger
}

func (c *Config) defaults() {
	if c.TrustDomain == "" {
		c.TrustDomain = identity.DefaultTrustDomain
	}
	if c.ClusterID == "" {
		c.ClusterID = "Kubernetes"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Client opens outbound tunnels through connection pools shared by every
// pod (HTTP/2 over TCP, and QUIC when enabled); the pool key's source IP
// tells which pod's netns to dial from. It implements proxy.Tunnels.
type Client struct {
	cfg    Config
	pool   *hbone.Pool
	quic   *hbone3.Pool // nil when QUIC is off
	dialer *hbone3.Dialer

	mu   sync.RWMutex
	pods map[netip.Addr]*inpod.Pod
}

var _ proxy.Tunnels = (*Client)(nil)

// NewClient returns a Client; Close releases its pools.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Certs == nil {
		return nil, errors.New("tunnel client: Certs is required")
	}
	cfg.defaults()
	c := &Client{cfg: cfg, pods: map[netip.Addr]*inpod.Pod{}}
	pool, err := hbone.NewPool(hbone.PoolConfig{TLSConfig: c.tlsConfig, Dial: c.dial, Limits: cfg.Limits, Logger: cfg.Log})
	if err != nil {
		return nil, err
	}
	c.pool = pool
	if cfg.QUIC {
		c.quic, err = hbone3.NewPool(hbone3.PoolConfig{
			TLSConfig: c.tlsConfig, PacketConn: c.packetConn,
			HandshakeTimeout: cfg.QUICHandshakeTimeout, Logger: cfg.Log,
		})
		if err != nil {
			_ = pool.Close()
			return nil, err
		}
	}
	c.dialer = &hbone3.Dialer{QUIC: c.quic, H2: pool, FallbackPeriod: cfg.FallbackPeriod}
	return c, nil
}

// Connect implements proxy.Tunnels. It dials QUIC when the tunnel
// address's workload advertises it (HTTP/2 after a failed QUIC handshake,
// for FallbackPeriod), HTTP/2 otherwise. A QUIC tunnel reports
// Transport() == hbone3.TransportQUIC; an HTTP/2 one is the *hbone.Stream
// itself.
func (c *Client) Connect(ctx context.Context, req proxy.TunnelRequest) (net.Conn, error) {
	if req.Pod == nil || !req.SourceIP.IsValid() {
		return nil, errors.New("tunnel: source pod and address are required")
	}
	c.remember(req.SourceIP, req.Pod)
	ids := make([]string, len(req.Expected))
	for i, id := range req.Expected {
		ids[i] = id.String()
	}
	key := hbone.NewKey(req.Source.String(), ids, req.Addr, req.SourceIP)
	advertised := c.advertisesQUIC(req.Addr.Addr())
	t, transport, err := c.dialer.Dial(ctx, key, req.Authority, req.Header, advertised)
	if err != nil {
		var se *hbone.StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w: %w", proxy.ErrTunnelDenied, err)
		}
		return nil, err
	}
	c.cfg.Metrics.tunnel("outbound", transport)
	if advertised && c.quic != nil && transport != hbone3.TransportQUIC {
		c.cfg.Metrics.fallback()
	}
	if s, ok := t.(*hbone3.Stream); ok {
		return quicConn{s}, nil
	}
	return t, nil
}

// ConnectUDP opens a CONNECT-UDP flow (RFC 9298 over HTTP/3) from pod src
// to target, through dst's ztunnel on UDP 15008, presenting src's identity
// and requiring dst's. dst must advertise QUIC (wds.Workload.QUIC); there
// is no HTTP/2 fallback for UDP. src must be a workload the Store knows.
func (c *Client) ConnectUDP(ctx context.Context, src *inpod.Pod, dst *wds.Workload, target netip.AddrPort) (*hbone3.DatagramConn, error) {
	if src == nil || dst == nil {
		return nil, errors.New("tunnel connect-udp: source pod and destination are required")
	}
	if c.quic == nil {
		return nil, errors.New("tunnel connect-udp: quic is disabled on this node")
	}
	if !dst.QUIC {
		return nil, fmt.Errorf("tunnel connect-udp: destination %s does not advertise quic", dst.UID)
	}
	if c.cfg.Store == nil {
		return nil, errors.New("tunnel connect-udp: no workload store")
	}
	srcW := c.cfg.Store.WorkloadByUID(c.cfg.ClusterID + "//Pod/" + src.Namespace + "/" + src.Name)
	if srcW == nil || len(srcW.Addrs) == 0 {
		return nil, fmt.Errorf("tunnel connect-udp: source pod %s/%s has no workload with an address", src.Namespace, src.Name)
	}
	srcIP, dstIP, ok := sameFamily(srcW.Addrs, dst.Addrs, target.Addr())
	if !ok {
		return nil, fmt.Errorf("tunnel connect-udp: no address pair of one family between %s and %s", srcW.UID, dst.UID)
	}
	sa := src.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	srcID, err := identity.NewID(c.cfg.TrustDomain, src.Namespace, sa)
	if err != nil {
		return nil, fmt.Errorf("tunnel connect-udp: source identity: %w", err)
	}
	c.remember(srcIP, src)
	key := hbone.NewKey(srcID.String(), []string{dst.Identity.String()}, netip.AddrPortFrom(dstIP, inpod.InboundHBONEPort), srcIP)
	return c.quic.DialUDP(ctx, key, target, http.Header{})
}

// sameFamily picks a source and a destination address of one family,
// preferring target's.
func sameFamily(src, dst []netip.Addr, target netip.Addr) (netip.Addr, netip.Addr, bool) {
	pick := func(as []netip.Addr, v4 bool) (netip.Addr, bool) {
		for _, a := range as {
			if a.Is4() == v4 {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	want := target.Unmap().Is4()
	for _, v4 := range []bool{want, !want} {
		s, ok1 := pick(src, v4)
		d, ok2 := pick(dst, v4)
		if ok1 && ok2 {
			return s, d, true
		}
	}
	return netip.Addr{}, netip.Addr{}, false
}

// advertisesQUIC reports whether the workload at a (a tunnel endpoint:
// a pod or a waypoint pod) advertises HBONE over QUIC.
func (c *Client) advertisesQUIC(a netip.Addr) bool {
	if c.quic == nil || c.cfg.Store == nil {
		return false
	}
	w := c.cfg.Store.WorkloadByIP(wds.NetAddr{Network: c.cfg.Network, IP: a.Unmap()})
	return w != nil && w.QUIC
}

// remember registers pod as the pod to dial from for source address ip.
func (c *Client) remember(ip netip.Addr, pod *inpod.Pod) {
	c.mu.RLock()
	known := c.pods[ip] == pod
	c.mu.RUnlock()
	if !known {
		c.mu.Lock()
		c.pods[ip] = pod
		c.mu.Unlock()
	}
}

// ForgetPod drops every source address registered for pod; the proxy calls
// it when the pod is gone.
func (c *Client) ForgetPod(pod *inpod.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ip, p := range c.pods {
		if p == pod {
			delete(c.pods, ip)
		}
	}
}

// Close closes the pools; it is idempotent.
func (c *Client) Close() error {
	if c.quic != nil {
		_ = c.quic.Close()
	}
	return c.pool.Close()
}

func (c *Client) podFor(ip netip.Addr) (*inpod.Pod, error) {
	c.mu.RLock()
	pod := c.pods[ip]
	c.mu.RUnlock()
	if pod == nil {
		return nil, fmt.Errorf("no pod with source address %s", ip)
	}
	return pod, nil
}

func (c *Client) dial(ctx context.Context, key hbone.Key) (net.Conn, error) {
	pod, err := c.podFor(key.SrcIP)
	if err != nil {
		return nil, err
	}
	return pod.Dial(ctx, key.DstAddr)
}

// packetConn is the UDP socket of a QUIC connection: in the source pod's
// netns, marked so that the pod's redirect rules let it out.
func (c *Client) packetConn(ctx context.Context, key hbone.Key) (net.PacketConn, error) {
	pod, err := c.podFor(key.SrcIP)
	if err != nil {
		return nil, err
	}
	return pod.ListenPacket(ctx, key.DstAddr.Addr())
}

func (c *Client) tlsConfig(key hbone.Key) (*tls.Config, error) {
	src, err := identity.ParseID(key.SrcIdentity)
	if err != nil {
		return nil, fmt.Errorf("source identity: %w", err)
	}
	var expected []identity.ID
	for _, s := range key.Identities() {
		id, err := identity.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("expected identity: %w", err)
		}
		expected = append(expected, id)
	}
	return identity.ClientConfig(identity.ClientOptions{
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := c.cfg.Certs.Get(cri.Context(), src)
			if err != nil {
				return nil, err
			}
			return cert.TLSCertificate(), nil
		},
		TrustDomain: c.cfg.TrustDomain,
		Roots:       c.cfg.Certs.Roots,
		Expected:    expected,
	})
}

// quicConn is an outbound QUIC tunnel that names its transport for the
// connection table.
type quicConn struct{ *hbone3.Stream }

// Transport returns hbone3.TransportQUIC.
func (quicConn) Transport() string { return hbone3.TransportQUIC }
