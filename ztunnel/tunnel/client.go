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
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Client opens outbound tunnels through one connection pool shared by every
// pod; the pool key's source IP tells which pod's netns to dial from. It
// implements proxy.Tunnels.
type Client struct {
	cfg  Config
	pool *hbone.Pool

	mu   sync.RWMutex
	pods map[netip.Addr]*inpod.Pod
}

var _ proxy.Tunnels = (*Client)(nil)

// NewClient returns a Client; Close releases its pool.
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
	return c, nil
}

// Connect implements proxy.Tunnels.
func (c *Client) Connect(ctx context.Context, req proxy.TunnelRequest) (net.Conn, error) {
	if req.Pod == nil || !req.SourceIP.IsValid() {
		return nil, errors.New("tunnel: source pod and address are required")
	}
	c.mu.RLock()
	known := c.pods[req.SourceIP] == req.Pod
	c.mu.RUnlock()
	if !known {
		c.mu.Lock()
		c.pods[req.SourceIP] = req.Pod
		c.mu.Unlock()
	}
	ids := make([]string, len(req.Expected))
	for i, id := range req.Expected {
		ids[i] = id.String()
	}
	key := hbone.NewKey(req.Source.String(), ids, req.Addr, req.SourceIP)
	s, err := c.pool.Dial(ctx, key, req.Authority, req.Header)
	if err != nil {
		var se *hbone.StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w: %w", proxy.ErrTunnelDenied, err)
		}
		return nil, err
	}
	return s, nil
}

// ConnectUDP opens a CONNECT-UDP flow (RFC 9298 over HTTP/3) from pod src
// to target, through dst's ztunnel on UDP 15008, presenting src's identity
// and requiring dst's. dst must advertise QUIC (wds.Workload.QUIC); there
// is no HTTP/2 fallback for UDP.
func (c *Client) ConnectUDP(ctx context.Context, src *inpod.Pod, dst *wds.Workload, target netip.AddrPort) (*hbone3.DatagramConn, error) {
	return nil, errors.New("tunnel: connect-udp is not implemented yet")
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

// Close closes the pool.
func (c *Client) Close() error { return c.pool.Close() }

func (c *Client) dial(ctx context.Context, key hbone.Key) (net.Conn, error) {
	c.mu.RLock()
	pod := c.pods[key.SrcIP]
	c.mu.RUnlock()
	if pod == nil {
		return nil, fmt.Errorf("no pod with source address %s", key.SrcIP)
	}
	return pod.Dial(ctx, key.DstAddr)
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
