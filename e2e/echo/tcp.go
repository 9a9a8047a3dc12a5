package echo

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"sync"
)

// tcpServer is the raw TCP echo: on accept it writes one JSON Reply line
// (protocol "tcp", the source address), then echoes every byte back until
// the client closes its side.
type tcpServer struct {
	pod Pod
	ln  net.Listener
	log *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (s *tcpServer) serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[net.Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() { // owned by s: shutdown closes c and waits
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *tcpServer) handle(c net.Conn) {
	defer func() { _ = c.Close() }() // connection done; nothing to report to
	rep := Reply{Pod: s.pod, Protocol: "tcp", Source: c.RemoteAddr().String(), Local: c.LocalAddr().String()}
	b, _ := json.Marshal(rep)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return
	}
	if _, err := io.Copy(c, c); err != nil {
		s.log.Debug("tcp echo ended", "source", rep.Source, "err", err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// shutdown stops accepting, closes open connections and waits for them.
func (s *tcpServer) shutdown(context.Context) error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
