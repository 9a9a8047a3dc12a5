package inbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/sniff"
)

// Certificates provides the waypoint's certificate and the trust anchors;
// certmgr.Manager implements it.
type Certificates interface {
	Get(ctx context.Context, id identity.ID) (*identity.Certificate, error)
	Roots() *x509.CertPool
}

// ConnHandler serves one accepted tunnel of a flow; it returns when it is
// done with c (the tunnel is closed after).
type ConnHandler interface {
	ServeFlow(ctx context.Context, f *flow.Flow, c net.Conn)
}

// Config configures a Server.
type Config struct {
	// Certs and Identity are the waypoint's credentials. Required.
	Certs    Certificates
	Identity identity.ID
	// TrustDomain clients must be in; empty means the waypoint's.
	TrustDomain string
	// Resolver maps authorities to destinations. Required.
	Resolver *Resolver
	// HTTP serves flows that speak HTTP; TCP the others. Required.
	HTTP, TCP ConnHandler
	// SniffTimeout bounds waiting for a client's first bytes on a port
	// with no declared protocol; a client silent that long is TCP
	// (default 1 s).
	SniffTimeout time.Duration
	// Limits and DrainTimeout tune the HBONE server.
	Limits       hbone.Limits
	DrainTimeout time.Duration
	Log          *slog.Logger
}

// Server serves the waypoint's HBONE port.
type Server struct {
	cfg Config
	srv *hbone.Server
}

// certWait bounds how long a handshake waits for the waypoint's certificate.
const certWait = 5 * time.Second

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Certs == nil || cfg.Identity.IsZero() || cfg.Resolver == nil || cfg.HTTP == nil || cfg.TCP == nil {
		return nil, errors.New("inbound: Certs, Identity, Resolver, HTTP and TCP are required")
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = cfg.Identity.TrustDomain
	}
	if cfg.SniffTimeout == 0 {
		cfg.SniffTimeout = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tc, err := identity.ServerConfig(identity.ServerOptions{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			ctx, cancel := context.WithTimeout(hello.Context(), certWait)
			defer cancel()
			cert, err := cfg.Certs.Get(ctx, cfg.Identity)
			if err != nil {
				return nil, err
			}
			return cert.TLSCertificate(), nil
		},
		TrustDomain: cfg.TrustDomain,
		Roots:       cfg.Certs.Roots,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	s.srv = &hbone.Server{TLSConfig: tc, Limits: cfg.Limits, DrainTimeout: cfg.DrainTimeout, Logger: cfg.Log,
		Handler: hbone.HandlerFunc(s.serveHBONE)}
	return s, nil
}

// Serve accepts HBONE connections on ln until ctx ends, then drains (see
// hbone.Server.Serve).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	err := s.srv.Serve(ctx, ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *Server) serveHBONE(ctx context.Context, r *hbone.Request) {
	log := s.cfg.Log.With("authority", r.Authority, "peer", r.PeerIdentity)
	peer, err := identity.ParseID(r.PeerIdentity)
	if err != nil {
		_ = r.Reject(http.StatusUnauthorized)
		log.Debug("rejected tunnel: peer has no valid identity", "error", err)
		return
	}
	f := &flow.Flow{TunnelAddr: addrPort(r.RemoteAddr)}
	f.Source.Principal = peer
	f.Source.Addr = f.TunnelAddr
	if fwd, ok := ForwardedFor(r.Forwarded); ok {
		f.Source.Addr = fwd
	}
	dst, err := s.cfg.Resolver.Resolve(r.Authority)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNotBound) {
			status = http.StatusUnauthorized
		} else if errors.Is(err, ErrUnknownDestination) {
			status = http.StatusServiceUnavailable
		}
		_ = r.Reject(status)
		log.Info("rejected tunnel", "status", status, "error", err)
		return
	}
	f.Destination = dst
	f.Source.Workload = s.cfg.Resolver.Workload(f.Source.Addr.Addr())
	st, err := r.Accept()
	if err != nil {
		return
	}
	defer func() { _ = st.Close() }()
	switch p := dst.Protocol; {
	case isHTTP(p):
		s.cfg.HTTP.ServeFlow(ctx, f, st)
	case declared(p):
		s.cfg.TCP.ServeFlow(ctx, f, st)
	default:
		sniffed, c, err := sniff.Detect(st, time.Now().Add(s.cfg.SniffTimeout))
		switch {
		case err != nil:
			log.Debug("tunnel failed while sniffing", "error", err)
		case sniffed == sniff.TCP:
			s.cfg.TCP.ServeFlow(ctx, f, c)
		default:
			s.cfg.HTTP.ServeFlow(ctx, f, c)
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
