package tunnel

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
)

// certWait bounds how long a handshake waits for the pod's certificate.
const certWait = 5 * time.Second

// Server serves HBONE on pods' 15008 listeners: TCP (HTTP/2) and, when
// Config.QUIC is set and the pod has one, the UDP socket (HTTP/3). It
// implements proxy.InboundServer.
type Server struct {
	cfg Config
	// DrainTimeout bounds a listener's graceful drain (pkg/hbone and
	// pkg/hbone3 defaults when zero).
	DrainTimeout time.Duration
	// resetKey is shared by every pod's QUIC server, so that a pod's next
	// server (the pod enrolled again) resets the connections of the one
	// before that their clients still hold.
	resetKey *quic.StatelessResetKey
}

var _ proxy.InboundServer = (*Server)(nil)

// NewServer returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Certs == nil {
		return nil, errors.New("tunnel server: Certs is required")
	}
	cfg.defaults()
	key := new(quic.StatelessResetKey)
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("tunnel server: stateless reset key: %w", err)
	}
	return &Server{cfg: cfg, resetKey: key}, nil
}

// Serve implements proxy.InboundServer: it presents id's certificate, and
// returns once ln is closed and its connections have drained. When ctx is
// (or derives from) a pod's context (inpod.FromContext), as the proxy's is,
// and that pod has a QUIC socket, Serve also serves HBONE over QUIC on it
// with the same certificate and handler until the pod drains; CONNECT-UDP
// requests there go to Config.HandleUDP.
func (s *Server) Serve(ctx context.Context, ln net.Listener, id identity.ID, h proxy.InboundHandler) error {
	tc, err := s.tlsConfig(id)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if pod := inpod.FromContext(ctx); s.cfg.QUIC && pod != nil && pod.Listeners.InboundQUIC != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveQUIC(ctx, pod, tc, h)
		}()
	}
	srv := &hbone.Server{
		TLSConfig:    tc,
		Limits:       s.cfg.Limits,
		DrainTimeout: s.DrainTimeout,
		Logger:       s.cfg.Log,
		Handler: hbone.HandlerFunc(func(ctx context.Context, r *hbone.Request) {
			peer, err := identity.ParseID(r.PeerIdentity)
			if err != nil {
				_ = r.Reject(401)
				return
			}
			s.cfg.Metrics.tunnel("inbound", hbone3.TransportH2)
			h(ctx, proxy.InboundRequest{
				Peer: peer, PeerAddr: addrPort(r.RemoteAddr), Authority: r.Authority, Header: r.Header,
			}, stream{r})
		}),
	}
	err = srv.Serve(ctx, ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *Server) tlsConfig(id identity.ID) (*tls.Config, error) {
	return identity.ServerConfig(identity.ServerOptions{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			ctx := hello.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			cctx, cancel := context.WithTimeout(ctx, certWait)
			defer cancel()
			cert, err := s.cfg.Certs.Get(cctx, id)
			if err != nil {
				return nil, err
			}
			return cert.TLSCertificate(), nil
		},
		TrustDomain: s.cfg.TrustDomain,
		Roots:       s.cfg.Certs.Roots,
	})
}

type stream struct{ r *hbone.Request }

func (s stream) Accept() (net.Conn, error) {
	st, err := s.r.Accept()
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (s stream) Reject(status int) { _ = s.r.Reject(status) }
