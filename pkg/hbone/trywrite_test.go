package hbone

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TryWrite sends while the windows have room, refuses without waiting and
// without losing window once they do not, and leaves the rest to Write.
func TestTryWrite(t *testing.T) {
	const window = 64 << 10
	release := make(chan struct{})
	got := make(chan []byte, 2)
	h := HandlerFunc(func(_ context.Context, r *Request) {
		s, err := r.Accept()
		if err != nil {
			return
		}
		_, _ = s.Write([]byte("hi")) // after SETTINGS: the client has the window
		<-release                    // read nothing until told: the client's window runs out
		b, _ := io.ReadAll(s)
		got <- b
	})
	ts := newSetup(t, h, func(s *Server) { s.Limits.StreamWindow = window }, nil)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()

	hi := make([]byte, 2)
	if _, err := io.ReadFull(s, hi); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	small := bytes.Repeat([]byte("t"), 1000)
	if ok, err := s.TryWrite(small); !ok || err != nil {
		t.Fatalf("TryWrite with the window open = %v, %v; want true", ok, err)
	}
	want.Write(small)
	if ok, err := s.TryWrite(make([]byte, directMin)); ok || err != nil {
		t.Fatalf("TryWrite of %d bytes = %v, %v; want false (left to Write)", directMin, ok, err)
	}
	// Leave less than small in the window (whether the connection's is
	// HTTP/2's initial 65,535 bytes or more).
	fill := bytes.Repeat([]byte("w"), window-len(small)-100)
	if _, err := s.Write(fill); err != nil {
		t.Fatal(err)
	}
	want.Write(fill)

	start := time.Now()
	if ok, err := s.TryWrite(small); ok || err != nil {
		t.Fatalf("TryWrite with the window spent = %v, %v; want false", ok, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("TryWrite waited %s", d)
	}
	close(release)
	last := []byte("last")
	if _, err := s.Write(last); err != nil { // waits for the window
		t.Fatal(err)
	}
	want.Write(last)
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("server read %d bytes, want %d (nothing from the refused TryWrite)", len(b), want.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not read the stream to its end")
	}
	s2 := ts.dial(t, nil) // a stream with its window open
	defer func() { _ = s2.Close() }()
	if _, err := io.ReadFull(s2, hi); err != nil {
		t.Fatal(err)
	}
	if err := s2.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s2.TryWrite(small); ok || !errors.Is(err, errWriteAfterClose) {
		t.Fatalf("TryWrite after CloseWrite = %v, %v; want %v", ok, err, errWriteAfterClose)
	}
	s.c.mu.Lock()
	sw, cw := s.sendWindow, s.c.sendWindow
	s.c.mu.Unlock()
	if sw < 0 || cw < 0 {
		t.Fatalf("send windows after the writes: stream %d, connection %d", sw, cw)
	}
}
