package hbone

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpApp is a loopback TCP server standing for the application a stream is
// spliced to: each accepted connection is handed to the test.
func tcpApp(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), ch
}

// copyResult is what the handler's io.Copy towards the app returned.
type copyResult struct {
	n   int64
	err error
}

// spliceHandler accepts each stream, connects to the app and copies both
// ways as the proxy does: towards the app with SpliceTo when async, else
// with io.Copy (which uses WriteTo); what that copy returned is sent on
// results.
func spliceHandler(app string, results chan<- copyResult, async bool) Handler {
	return HandlerFunc(func(_ context.Context, r *Request) {
		s, err := r.Accept()
		if err != nil {
			results <- copyResult{err: err}
			return
		}
		up, err := net.Dial("tcp", app)
		if err != nil {
			results <- copyResult{err: err}
			return
		}
		defer func() { _ = up.Close() }()
		if async {
			done := make(chan copyResult, 1)
			if err := s.SpliceTo(up.(*net.TCPConn), func(n int64, err error) { done <- copyResult{n, err} }); err != nil {
				results <- copyResult{err: err}
				return
			}
			if _, err := io.Copy(s, up); err == nil {
				_ = s.CloseWrite()
			} else {
				_ = s.Close()
			}
			results <- <-done
			return
		}
		go func() {
			_, _ = io.Copy(s, up)
			_ = s.CloseWrite()
		}()
		n, err := io.Copy(up, s)
		_ = up.(*net.TCPConn).CloseWrite()
		results <- copyResult{n, err}
	})
}

// bothModes runs f with the handler copying by WriteTo and by SpliceTo.
func bothModes(t *testing.T, f func(t *testing.T, async bool)) {
	t.Run("WriteTo", func(t *testing.T) { f(t, false) })
	t.Run("SpliceTo", func(t *testing.T) { f(t, true) })
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestWriteToTCPDirect: bytes spliced to a TCP destination arrive complete
// and in order whether the reader delivers them directly or queues them
// (a stalled destination), a stalled destination does not hold up another
// stream of the same connection, and io.Copy reports every byte.
func TestWriteToTCPDirect(t *testing.T) { bothModes(t, testWriteToTCPDirect) }

func testWriteToTCPDirect(t *testing.T, async bool) {
	app, conns := tcpApp(t)
	results := make(chan copyResult, 4)
	ts := newSetup(t, spliceHandler(app, results, async), nil, nil)

	// Stream 1: 8 MiB to a destination that does not read yet, so its
	// socket fills and the rest is queued for blocking writes.
	big := pattern(8<<20, 1)
	s1 := ts.dial(t, nil)
	defer func() { _ = s1.Close() }()
	slow := <-conns
	wrote := make(chan error, 1)
	go func() {
		_, err := s1.Write(big)
		if err == nil {
			err = s1.CloseWrite()
		}
		wrote <- err
	}()
	time.Sleep(100 * time.Millisecond)

	// Stream 2 on the same connection: request/response round trips go
	// through while stream 1's destination is stalled.
	s2 := ts.dial(t, nil)
	defer func() { _ = s2.Close() }()
	fast := <-conns
	go func() { _, _ = io.Copy(fast, fast); _ = fast.Close() }() // echo app
	br := bufio.NewReader(s2)
	for i := range 200 {
		msg := pattern(1024, byte(i))
		if _, err := s2.Write(msg); err != nil {
			t.Fatalf("round trip %d write: %v", i, err)
		}
		got := make([]byte, len(msg))
		_ = s2.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("round trip %d read (held up behind a stalled stream?): %v", i, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("round trip %d: payload differs", i)
		}
	}
	_ = s2.CloseWrite()

	// Release the stalled destination: everything, in order.
	got, err := io.ReadAll(slow)
	_ = slow.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		i := 0
		for i < len(got) && i < len(big) && got[i] == big[i] {
			i++
		}
		t.Fatalf("stalled destination got %d bytes, want %d; first difference at %d", len(got), len(big), i)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case r := <-results:
			if r.err != nil || (r.n != int64(len(big)) && r.n != 200*1024) {
				t.Errorf("handler's copy: %d bytes, %v", r.n, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not finish")
		}
	}
}

// TestWriteToTCPDestinationGone: a direct write that fails (the
// destination reset) ends WriteTo with the error.
func TestWriteToTCPDestinationGone(t *testing.T) { bothModes(t, testWriteToTCPDestinationGone) }

func testWriteToTCPDestinationGone(t *testing.T, async bool) {
	app, conns := tcpApp(t)
	results := make(chan copyResult, 1)
	ts := newSetup(t, spliceHandler(app, results, async), nil, nil)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	dst := <-conns
	if _, err := s.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(dst, b); err != nil || string(b) != "first" {
		t.Fatalf("first message: %q %v", b, err)
	}
	_ = dst.(*net.TCPConn).SetLinger(0)
	_ = dst.Close() // RST
	time.Sleep(50 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case r := <-results:
			if r.err == nil {
				t.Fatalf("handler's copy ended without error after %d bytes", r.n)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("copy to a reset destination did not end")
		}
		_, _ = s.Write(make([]byte, 1024))
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSpliceToClientSide: a stream opened from a pool and spliced to a TCP
// connection receives the server's bytes with no reader of its own (the
// connection's loop reads), and the server's end shuts down the TCP write
// side after them.
func TestSpliceToClientSide(t *testing.T) {
	ts := newSetup(t, echoHandler(), nil, nil)
	app, conns := tcpApp(t)
	near, err := net.Dial("tcp", app)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = near.Close() }()
	far := (<-conns).(*net.TCPConn)
	defer func() { _ = far.Close() }()
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	done := make(chan copyResult, 1)
	if err := s.SpliceTo(far, func(n int64, err error) { done <- copyResult{n, err} }); err != nil {
		t.Fatal(err)
	}
	if err := s.SpliceTo(far, func(int64, error) {}); !errors.Is(err, ErrSpliced) {
		t.Errorf("second SpliceTo: %v, want ErrSpliced", err)
	}
	br := bufio.NewReader(near)
	for i := range 50 {
		msg := pattern(1500, byte(i))
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		_ = near.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_ = s.CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the server's end: %d bytes, %v; want EOF", len(rest), err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.n != 50*1500 {
			t.Errorf("done(%d, %v), want (%d, nil)", r.n, r.err, 50*1500)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("done not called")
	}
}

// TestClosedUnreadDataFreesConnWindow: data a stream received but never
// read is given back to the connection's window when the stream is
// closed; otherwise a few such streams (4 MiB each) would use up the
// 16 MiB connection window and stall every later stream.
func TestClosedUnreadDataFreesConnWindow(t *testing.T) {
	chunk := make([]byte, DefaultStreamWindow)
	h := HandlerFunc(func(ctx context.Context, r *Request) {
		s, err := r.Accept()
		if err != nil {
			return
		}
		if r.Authority == "10.0.0.1:1" {
			_, _ = s.Write([]byte("small"))
			_ = s.CloseWrite()
			return
		}
		_, _ = s.Write(chunk) // the whole stream window; the client never reads it
		<-ctx.Done()
	})
	ts := newSetup(t, h, nil, nil)
	queued := func(s *Stream) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := -s.roff
		for _, b := range s.rq[s.rhead:] {
			n += len(*b)
		}
		return n
	}
	for i := range 6 { // 6 × 4 MiB > the 16 MiB connection window
		s := ts.dial(t, nil)
		deadline := time.Now().Add(5 * time.Second)
		for queued(s) < len(chunk) {
			if time.Now().After(deadline) {
				t.Fatalf("stream %d: only %d of %d bytes arrived (connection window used up?)", i, queued(s), len(chunk))
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = s.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := ts.pool.Dial(ctx, ts.key, "10.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(s); err != nil || string(b) != "small" {
		t.Fatalf("later stream: %q, %v", b, err)
	}
}
