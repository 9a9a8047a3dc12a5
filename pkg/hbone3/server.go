package hbone3

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
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weftmesh/weft/pkg/hbone"
)

// Defaults of a Server and a Pool.
const (
	DefaultMaxStreamsPerConn = 100
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultDrainTimeout      = 30 * time.Second
)

// Server accepts HBONE-over-QUIC connections: CONNECT streams and, when
// HandleUDP is set, CONNECT-UDP flows. Fields must not change after Serve.
type Server struct {
	// TLSConfig is the mesh server configuration (identity.ServerConfig):
	// client certificates required and verified, TLS 1.3, AES-GCM. Its
	// ALPN is replaced by h3. Required.
	TLSConfig *tls.Config
	// HandleStream serves each CONNECT stream on its own goroutine; it
	// answers with Accept or Reject. Required.
	HandleStream func(ctx context.Context, req *Request)
	// HandleUDP serves each CONNECT-UDP request; nil refuses them with 501.
	HandleUDP func(ctx context.Context, req *UDPRequest)
	// MaxStreamsPerConn bounds concurrent streams per connection (default
	// DefaultMaxStreamsPerConn).
	MaxStreamsPerConn int
	// IdleTimeout closes a connection idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// DrainTimeout bounds the graceful drain when Serve's ctx ends
	// (default DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// StatelessResetKey, when set, makes the server answer packets of
	// connections it does not know with a stateless reset (RFC 9000
	// section 10.3) that their clients accept when an earlier server on
	// the address used the same key: a client whose connection ended
	// without its knowing (the close lost) learns it at its next packet
	// instead of waiting for an answer. Servers that may follow each
	// other on an address share the key; one random key per process will
	// do. nil sends no resets.
	StatelessResetKey *quic.StatelessResetKey

	mu     sync.Mutex
	closed bool
	stop   context.CancelFunc // ends the drain of the running Serve
}

// Serve serves HBONE over QUIC on pc until ctx ends, then sends GOAWAY,
// lets open streams finish for at most DrainTimeout (or until Close), closes
// every connection with CONNECTION_CLOSE, and returns nil. A Server serves
// once. pc is not closed; the caller owns it, and must keep it open until
// Serve returned, or the peers are not told that their connections ended
// (they would send into a socket that no longer knows them until their
// requests time out).
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	if s.HandleStream == nil {
		return errors.New("hbone3 server: HandleStream is required")
	}
	tlsConf, err := forQUIC(s.TLSConfig)
	if err != nil {
		return err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	streams := s.MaxStreamsPerConn
	if streams <= 0 {
		streams = DefaultMaxStreamsPerConn
	}
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	drain := s.DrainTimeout
	if drain <= 0 {
		drain = DefaultDrainTimeout
	}
	h3 := &http3.Server{
		TLSConfig: tlsConf,
		QUICConfig: withWindows(&quic.Config{
			MaxIncomingStreams:    int64(streams),
			MaxIncomingUniStreams: 8,
			MaxIdleTimeout:        idle,
			KeepAlivePeriod:       idle / 3,
			EnableDatagrams:       s.HandleUDP != nil,
		}),
		EnableDatagrams: s.HandleUDP != nil,
		Handler:         http.HandlerFunc(s.serveHTTP),
		Logger:          log,
	}
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.mu.Lock()
	if s.closed || s.stop != nil {
		s.mu.Unlock()
		return errors.New("hbone3 serve: server closed or already serving")
	}
	s.stop = cancel
	s.mu.Unlock()
	// A transport of our own (http3.Server.Serve would make one per
	// socket) for the reset key; it leaves pc open when it closes.
	tr := &quic.Transport{Conn: pc, StatelessResetKey: s.StatelessResetKey}
	defer func() { _ = tr.Close() }()
	ln, err := tr.ListenEarly(tlsConf, h3.QUICConfig)
	if err != nil {
		return fmt.Errorf("hbone3 listen: %w", err)
	}
	defer func() { _ = ln.Close() }()
	served := make(chan error, 1)
	go func() { served <- h3.ServeListener(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("hbone3 serve: %w", err)
	case <-ctx.Done():
	case <-dctx.Done(): // Close
	}
	// No new connections; the open ones get GOAWAY and their streams
	// finish (the server does not close a listener it did not make).
	_ = ln.Close()
	dctx, dcancel := context.WithTimeout(dctx, drain)
	defer dcancel()
	if err := h3.Shutdown(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		log.Debug("hbone3 drain", "err", err)
	}
	_ = h3.Close()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
		log.Debug("hbone3 stopped", "err", err)
	}
	return nil
}

// Close makes a running Serve end its drain at once: open streams end and
// every connection is closed with CONNECTION_CLOSE before Serve returns. A
// Serve not yet started fails. Close does not wait for Serve; it is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// serveHTTP admits only the two tunnel methods; every other request is
// refused before any handler sees it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		w.Header().Set("Allow", http.MethodConnect)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	remote, _ := r.Context().Value(http3.RemoteAddrContextKey).(net.Addr)
	base := requestBase{
		PeerIdentity:     hbone.PeerIdentity(r.TLS.PeerCertificates[0]),
		PeerCertificates: r.TLS.PeerCertificates,
		Header:           r.Header,
		LocalAddr:        local,
		RemoteAddr:       remote,
		w:                w,
	}
	switch r.Proto {
	case ConnectUDP:
		if s.HandleUDP == nil {
			w.WriteHeader(http.StatusNotImplemented)
			return
		}
		target, err := parseUDPPath(r.URL.Path)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req := &UDPRequest{requestBase: base, Target: target}
		s.HandleUDP(r.Context(), req)
		req.rejectIfUnanswered()
	case "HTTP/3.0":
		req := &Request{requestBase: base, Authority: r.Host}
		s.HandleStream(r.Context(), req)
		req.rejectIfUnanswered()
	default: // another extended CONNECT protocol
		w.WriteHeader(http.StatusNotImplemented)
	}
}

// requestBase is what stream and UDP requests share.
type requestBase struct {
	// PeerIdentity is the SPIFFE URI SAN of the client's verified leaf.
	PeerIdentity string
	// PeerCertificates is the client's chain, leaf first.
	PeerCertificates []*x509.Certificate
	// Header holds the request's regular headers.
	Header http.Header
	// LocalAddr and RemoteAddr are the QUIC connection's addresses.
	LocalAddr, RemoteAddr net.Addr

	w        http.ResponseWriter
	answered bool
}

// Reject answers status (not 2xx) and ends the request.
func (b *requestBase) Reject(status int) error {
	if b.answered {
		return errors.New("hbone3: request already answered")
	}
	if status >= 200 && status < 300 {
		return fmt.Errorf("hbone3: reject with %d: not an error status", status)
	}
	b.answered = true
	b.w.WriteHeader(status)
	return nil
}

// accept answers 200 and takes the stream over from the HTTP layer.
func (b *requestBase) accept() (*http3.Stream, error) {
	if b.answered {
		return nil, errors.New("hbone3: request already answered")
	}
	b.answered = true
	streamer, ok := b.w.(http3.HTTPStreamer)
	if !ok {
		return nil, errors.New("hbone3: response writer cannot hand over its stream")
	}
	b.w.WriteHeader(http.StatusOK)
	str, err := streamer.HTTPStream()
	if err != nil {
		return nil, fmt.Errorf("hbone3: take over stream: %w", err)
	}
	return str, nil
}

// rejectIfUnanswered answers 503 for a handler that returned without
// answering, so no client waits forever.
func (b *requestBase) rejectIfUnanswered() {
	if !b.answered {
		_ = b.Reject(http.StatusServiceUnavailable)
	}
}

// Request is one CONNECT stream offered to Server.HandleStream. The
// handler answers it exactly once, with Accept or Reject, and must not
// return before it is done with an accepted Stream.
type Request struct {
	requestBase
	// Authority is the :authority, "host:port": the target workload
	// address, or the original VIP:port when sent to a waypoint.
	Authority string
}

// Accept answers 200 and returns the tunnel.
func (r *Request) Accept() (*Stream, error) {
	str, err := r.accept()
	if err != nil {
		return nil, err
	}
	return newStream(str, r.LocalAddr, r.RemoteAddr, r.PeerIdentity, nil), nil
}

// UDPRequest is one CONNECT-UDP flow offered to Server.HandleUDP. The
// handler answers it exactly once, with Accept or Reject, and must not
// return before it is done with an accepted flow.
type UDPRequest struct {
	requestBase
	// Target is the UDP destination from the RFC 9298 path.
	Target netip.AddrPort
}

// Accept answers 200 (with capsule-protocol, as RFC 9298 requires) and
// returns the flow.
func (r *UDPRequest) Accept() (*DatagramConn, error) {
	r.w.Header().Set("Capsule-Protocol", "?1")
	str, err := r.accept()
	if err != nil {
		return nil, err
	}
	return newDatagramConn(str, r.Target, r.LocalAddr, r.RemoteAddr, r.PeerIdentity, nil), nil
}
