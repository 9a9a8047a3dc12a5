package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/retry"
)

// Certificates provides the waypoint's certificate and the trust anchors;
// certmgr.Manager implements it.
type Certificates interface {
	Get(ctx context.Context, id identity.ID) (*identity.Certificate, error)
	Roots() *x509.CertPool
}

// Workloads finds the workload at an address; wds.Store implements it.
type Workloads interface {
	WorkloadByIP(a wds.NetAddr) *wds.Workload
}

var _ Workloads = (*wds.Store)(nil)

// Config configures a Dialer.
type Config struct {
	// Certs and Identity are the waypoint's credentials. Required.
	Certs    Certificates
	Identity identity.ID
	// Workloads tells the identity of an endpoint from its address.
	// Required.
	Workloads Workloads
	// Network is the waypoint's network.
	Network string
	// TrustDomain endpoints must be in; empty means the waypoint's.
	TrustDomain string
	// ConnectTimeout bounds establishing a stream (default 5 s).
	ConnectTimeout time.Duration
	// HBONEPort is the endpoints' ztunnel port (default 15008).
	HBONEPort uint16
	// Limits tunes the HBONE connections.
	Limits hbone.Limits
	// DialTCP opens plain and HBONE TCP connections; nil uses net.Dialer.
	DialTCP func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	Log     *slog.Logger
}

// Dialer opens connections to endpoints. It is safe for concurrent use.
type Dialer struct {
	cfg  Config
	pool *hbone.Pool
}

// ErrNotInMesh is wrapped by Dial for an address no workload has.
var ErrNotInMesh = errors.New("endpoint is not a mesh workload")

// NewDialer returns a Dialer; Close releases its pool.
func NewDialer(cfg Config) (*Dialer, error) {
	if cfg.Certs == nil || cfg.Workloads == nil || cfg.Identity.IsZero() {
		return nil, errors.New("upstream: Certs, Workloads and Identity are required")
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = cfg.Identity.TrustDomain
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.HBONEPort == 0 {
		cfg.HBONEPort = wds.DefaultHBONEPort
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTCP == nil {
		var d net.Dialer
		cfg.DialTCP = func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a.String())
		}
	}
	d := &Dialer{cfg: cfg}
	pool, err := hbone.NewPool(hbone.PoolConfig{
		TLSConfig: d.tlsConfig, Limits: cfg.Limits, Logger: cfg.Log,
		Dial: func(ctx context.Context, k hbone.Key) (net.Conn, error) { return cfg.DialTCP(ctx, k.DstAddr) },
	})
	if err != nil {
		return nil, err
	}
	d.pool = pool
	return d, nil
}

// Dial connects to endpoint ep (a pod IP and target port): through an HBONE
// stream to its ztunnel when the workload speaks HBONE, sending hdr with the
// CONNECT, else over plain TCP. Every error is marked with
// retry.ConnectFailure (the request never reached the endpoint); errors
// from the HBONE server's answer are *hbone.StatusError.
func (d *Dialer) Dial(ctx context.Context, ep netip.AddrPort, hdr http.Header) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer cancel()
	w := d.cfg.Workloads.WorkloadByIP(wds.NetAddr{Network: d.cfg.Network, IP: ep.Addr().Unmap()})
	if w == nil || !w.HBONE() {
		c, err := d.cfg.DialTCP(ctx, ep)
		if err != nil {
			return nil, retry.ConnectFailure(fmt.Errorf("dial %s: %w", ep, err))
		}
		return c, nil
	}
	key := hbone.NewKey(d.cfg.Identity.String(), []string{w.Identity.String()},
		netip.AddrPortFrom(ep.Addr(), d.cfg.HBONEPort), netip.Addr{})
	s, err := d.pool.Dial(ctx, key, ep.String(), hdr)
	if err != nil {
		return nil, retry.ConnectFailure(fmt.Errorf("hbone to %s via %s: %w", ep, key.DstAddr, err))
	}
	return s, nil
}

// Stats reports the HBONE pool's connections and streams per key.
func (d *Dialer) Stats() map[hbone.Key]hbone.PoolStats { return d.pool.Stats() }

// Close closes the pool; it is idempotent.
func (d *Dialer) Close() error { return d.pool.Close() }

func (d *Dialer) tlsConfig(key hbone.Key) (*tls.Config, error) {
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
			cert, err := d.cfg.Certs.Get(cri.Context(), d.cfg.Identity)
			if err != nil {
				return nil, err
			}
			return cert.TLSCertificate(), nil
		},
		TrustDomain: d.cfg.TrustDomain,
		Roots:       d.cfg.Certs.Roots,
		Expected:    expected,
	})
}
