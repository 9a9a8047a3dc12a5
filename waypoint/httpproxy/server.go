package httpproxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/weftmesh/weft/waypoint/flow"
)

// Server serves HTTP on tunnel streams handed to it by ServeFlow. It
// implements inbound.ConnHandler.
type Server struct {
	srv  *http.Server
	ln   *connListener
	h    http.Handler
	log  *slog.Logger
	h1   h1Conns
	once sync.Once
	done chan struct{}
}

// NewServer returns a Server running h for every request; the request's
// context carries the flow (flow.FromContext).
func NewServer(h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: newConnListener(), h: h, log: log, done: make(chan struct{})}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{
		Handler: h, Protocols: protos, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		HTTP2:    &http2Config,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if fc, ok := c.(*flowConn); ok {
				return flow.NewContext(ctx, fc.flow)
			}
			return ctx
		},
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.ln)
	}()
	return s
}

var http2Config = http.HTTP2Config{MaxReceiveBufferPerStream: 4 << 20, MaxReceiveBufferPerConnection: 16 << 20}

// ServeFlow serves c until the HTTP server is done with it (the client
// closed it, it idled out, or ctx ended): plain HTTP/1.1 requests in this
// goroutine (serveH1), and from the first request that is not plain
// (HTTP/2, an upgrade) on, net/http's server.
func (s *Server) ServeFlow(ctx context.Context, f *flow.Flow, c net.Conn) {
	select {
	case <-s.ln.closed:
		_ = c.Close()
		return
	default:
	}
	rest := serveH1(flow.NewContext(ctx, f), &s.h1, c, s.h, s.log)
	if rest == nil {
		return
	}
	fc := &flowConn{Conn: rest, flow: f, closed: make(chan struct{})}
	if !s.ln.push(fc) {
		return
	}
	select {
	case <-fc.closed:
	case <-ctx.Done():
		_ = fc.Close()
	}
}

// Shutdown stops taking connections and waits, bounded by ctx, for active
// requests to finish; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.h1.shutdown()
		err = s.srv.Shutdown(ctx)
		if err != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
	return err
}

// flowConn is a tunnel with its flow; Close tells ServeFlow it is done.
type flowConn struct {
	net.Conn
	flow   *flow.Flow
	once   sync.Once
	closed chan struct{}
}

func (c *flowConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// CloseWrite half-closes the tunnel (used by upgraded connections).
func (c *flowConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// connListener is a net.Listener that accepts the connections pushed to it.
type connListener struct {
	ch     chan net.Conn
	mu     sync.Mutex
	closed chan struct{}
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "hbone" }
func (pipeAddr) String() string  { return "hbone" }
