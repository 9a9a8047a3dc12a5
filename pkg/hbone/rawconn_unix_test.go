//go:build unix

package hbone

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestRawIO checks that corkConn's raw socket I/O behaves as net.TCPConn's
// does where crypto/tls and this package look: data both ways (large
// writes complete, a reader waits for data), deadlines as timeouts,
// end of stream as io.EOF, a reset as ECONNRESET, closed as net.ErrClosed,
// and no allocation per read or write.
func TestRawIO(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := newCorkConn(a), newCorkConn(b)
	if ca.raw == nil || cb.raw == nil {
		t.Fatal("no raw I/O on a TCP connection")
	}

	// A write larger than the socket buffers completes while the peer
	// reads; the reader waits for data it does not have yet.
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		n, err := ca.Write(big)
		if err == nil && n != len(big) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(cb, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	for i := range got {
		if got[i] != big[i] {
			t.Fatalf("byte %d differs", i)
		}
	}

	p := make([]byte, 4096)
	if n := testing.AllocsPerRun(50, func() {
		if _, err := ca.Write(p[:100]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cb, p[:100]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per write and read, want 0", n)
	}

	// A deadline is a timeout, and not a lasting failure.
	_ = b.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := cb.Read(p)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline = %v, want a timeout", err)
	}
	_ = b.SetReadDeadline(time.Time{})
	if _, err := ca.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := cb.Read(p); err != nil || n != 1 {
		t.Fatalf("read after clearing the deadline = %d, %v", n, err)
	}

	// End of stream.
	_ = a.CloseWrite()
	if _, err := cb.Read(p); err != io.EOF {
		t.Fatalf("read after the peer's FIN = %v, want io.EOF", err)
	}

	// A reset.
	c, d := tcpPair(t)
	cc, cd := newCorkConn(c), newCorkConn(d)
	_ = d.SetLinger(0)
	_ = d.Close()
	time.Sleep(20 * time.Millisecond)
	if _, err := cc.Read(p); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's reset = %v, want ECONNRESET", err)
	}
	// Closed locally.
	if _, err := cd.Read(p); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection = %v, want net.ErrClosed", err)
	}
	if _, err := cd.Write(p); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection = %v, want net.ErrClosed", err)
	}
}
