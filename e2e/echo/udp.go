package echo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// udpServer is the UDP echo: every datagram is answered, to its source,
// with one datagram holding a JSON Reply line (protocol "udp", the source
// address) followed by the payload.
type udpServer struct {
	pod Pod
	pc  net.PacketConn
	log *slog.Logger
}

func (s *udpServer) serve() error {
	buf := make([]byte, 65535)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		rep := Reply{Pod: s.pod, Protocol: "udp", Source: from.String(), Local: s.pc.LocalAddr().String()}
		b, _ := json.Marshal(rep)
		out := append(append(b, '\n'), buf[:n]...)
		if _, err := s.pc.WriteTo(out, from); err != nil {
			s.log.Debug("udp echo reply", "source", from.String(), "err", err)
		}
	}
}

func (s *udpServer) shutdown(context.Context) error { return s.pc.Close() }

// udpRetry is how long the client waits for an answer before sending the
// datagram again (UDP may lose it, and a mesh flow's first datagram waits
// for its tunnel).
const udpRetry = 500 * time.Millisecond

// udpCall sends Message from a new socket and waits for the echo,
// resending every udpRetry until ctx ends.
func udpCall(ctx context.Context, c ClientConfig) (Result, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", c.UDPAddr)
	if err != nil {
		return Result{}, fmt.Errorf("dial %s: %w", c.UDPAddr, err)
	}
	defer func() { _ = conn.Close() }() // every read and write below is checked
	buf := make([]byte, 65535)
	for {
		if _, err := conn.Write([]byte(c.Message)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return Result{}, fmt.Errorf("send to %s: %w", c.UDPAddr, err)
		}
		wait := time.Now().Add(udpRetry)
		if dl, ok := ctx.Deadline(); ok && dl.Before(wait) {
			wait = dl
		}
		_ = conn.SetReadDeadline(wait)
		n, err := conn.Read(buf)
		if err == nil {
			line, echoed, _ := bytes.Cut(buf[:n], []byte("\n"))
			var rep Reply
			if err := json.Unmarshal(line, &rep); err != nil {
				return Result{}, fmt.Errorf("parse reply from %s: %w", c.UDPAddr, err)
			}
			s := string(echoed)
			return Result{Proto: "udp", Reply: &rep, Echo: &s}, nil
		}
		// A timeout or a port-unreachable (a server not yet listening)
		// is worth another try while ctx lasts.
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return Result{}, fmt.Errorf("read from %s: %w", c.UDPAddr, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("no answer from %s: %w (last: %v)", c.UDPAddr, ctx.Err(), err)
		}
	}
}
