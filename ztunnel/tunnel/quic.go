package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
)

// serveQUIC serves HBONE over QUIC on pod's UDP socket, from its first
// datagram until the pod starts draining (or ctx ends); then the server
// sends GOAWAY and lets open streams finish, for at most DrainTimeout, and
// closes its connections. Each accepted stream is tracked on the pod, so
// the pod's drain waits for it as for TCP, and the server holds the pod
// (Pod.Hold) until it has said goodbye to its peers: the pod's socket must
// stay open for that, or a client keeps a pooled connection that the pod's
// next server (re-enrolled, on a new socket) does not know, and its next
// CONNECT waits for an answer until it times out.
func (s *Server) serveQUIC(ctx context.Context, pod *inpod.Pod, tc *tls.Config, h proxy.InboundHandler) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-pod.Draining():
			cancel()
		case <-qctx.Done():
		}
	}()
	srv := &hbone3.Server{
		TLSConfig:         tc,
		DrainTimeout:      s.DrainTimeout,
		Logger:            s.cfg.Log,
		StatelessResetKey: s.resetKey,
		HandleStream: func(ctx context.Context, r *hbone3.Request) {
			peer, err := identity.ParseID(r.PeerIdentity)
			if err != nil {
				_ = r.Reject(http.StatusUnauthorized)
				return
			}
			s.cfg.Metrics.tunnel("inbound", hbone3.TransportQUIC)
			h(ctx, proxy.InboundRequest{
				Peer: peer, PeerAddr: addrPort(r.RemoteAddr), Authority: r.Authority, Header: r.Header,
				Transport: hbone3.TransportQUIC,
			}, &quicStream{r: r, pod: pod})
		},
	}
	if s.cfg.HandleUDP != nil {
		handle := s.cfg.HandleUDP
		srv.HandleUDP = func(ctx context.Context, req *hbone3.UDPRequest) { handle(ctx, pod, req) }
	}
	// The server starts with the first datagram: most pods never receive
	// HBONE over QUIC (clients, or peers that speak HTTP/2), and an idle
	// quic-go server holds about 120 KiB and six goroutines.
	if !awaitDatagram(qctx, pod.Listeners.InboundQUIC) {
		return // draining (or ended) before anything came: no peer to tell
	}
	release, ok := pod.Hold(srv)
	if !ok {
		return // already draining: nothing to serve
	}
	defer release()
	if err := srv.Serve(qctx, pod.Listeners.InboundQUIC); err != nil {
		s.cfg.Log.Warn("hbone quic server ended", "pod", pod.Namespace+"/"+pod.Name, "error", err)
	}
}

// quicStream answers one CONNECT received over QUIC; an accepted stream
// is tracked on the pod until it is closed.
type quicStream struct {
	r   *hbone3.Request
	pod *inpod.Pod
}

func (q *quicStream) Accept() (net.Conn, error) {
	st, err := q.r.Accept()
	if err != nil {
		return nil, err
	}
	t := &trackedStream{Stream: st}
	untrack, ok := q.pod.Track(t)
	if !ok {
		st.Abort()
		return nil, errors.New("pod is draining")
	}
	t.setUntrack(untrack)
	return t, nil
}

func (q *quicStream) Reject(status int) { _ = q.r.Reject(status) }

// trackedStream is an inbound QUIC stream that leaves the pod's
// connection set when closed.
type trackedStream struct {
	*hbone3.Stream
	mu      sync.Mutex
	closed  bool
	untrack func()
}

// setUntrack installs the pod's untrack, calling it at once when the
// stream was closed (by a drain) before it was installed.
func (t *trackedStream) setUntrack(untrack func()) {
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.untrack = untrack
	}
	t.mu.Unlock()
	if closed {
		untrack()
	}
}

// Close closes the stream and untracks it; it is idempotent.
func (t *trackedStream) Close() error {
	err := t.Stream.Close()
	t.mu.Lock()
	untrack := t.untrack
	t.untrack, t.closed = nil, true
	t.mu.Unlock()
	if untrack != nil {
		untrack()
	}
	return err
}

// Transport returns hbone3.TransportQUIC.
func (*trackedStream) Transport() string { return hbone3.TransportQUIC }
