package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is one of a proxy's operational HTTP endpoints on its own
// address. Listen, then Serve on the owner's goroutine; Shutdown drains
// it and Close abandons a listener that never served.
type Server struct {
	// Name says which endpoint it is in errors and logs ("admin").
	Name string
	// Addr is the listen address; the admin handler's must be localhost.
	Addr    string
	Handler http.Handler

	ln  net.Listener
	srv *http.Server
}

// Listen opens the listener.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("%s server: %w", s.Name, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// Serve serves until Shutdown; it returns http.ErrServerClosed then.
func (s *Server) Serve() error { return s.srv.Serve(s.ln) }

// Close closes the listener of a server that is not serving.
func (s *Server) Close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

// Shutdown stops the server gracefully within ctx.
func (s *Server) Shutdown(ctx context.Context) {
	if s.srv != nil {
		_ = s.srv.Shutdown(ctx)
	}
}
