//go:build linux

package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (send, recv *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	send, err = net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	recv, err = ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	return send, recv
}

// stuckWriter's Write blocks until release is closed, as a tunnel's does
// while the peer's application does not read.
type stuckWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

// stuckTryWriter is a stuckWriter with a TryWrite that never takes
// anything.
type stuckTryWriter struct{ *stuckWriter }

func (stuckTryWriter) TryWrite([]byte) (bool, error) { return false, nil }

// A write that waits on the peer must not keep the source's Close waiting:
// whoever closes it (a drain at its deadline, a revoked policy, the other
// direction's failure) would hang until the peer reads.
func TestCopyFromTCPCloseWhileWriteWaits(t *testing.T) {
	for _, try := range []bool{false, true} {
		t.Run(fmt.Sprintf("TryWrite=%v", try), func(t *testing.T) {
			send, recv := loopbackPair(t)
			sw := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
			var dst io.Writer = sw
			if try {
				dst = stuckTryWriter{sw}
			}
			done := make(chan error, 1)
			go func() {
				_, err := copyFromTCP(dst, recv)
				done <- err
			}()
			defer close(sw.release)
			if _, err := send.Write([]byte("stuck")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-sw.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the copy never wrote")
			}
			closed := make(chan struct{})
			go func() {
				_ = recv.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close waited for a write blocked on the peer")
			}
		})
	}
}

// takeEveryOther takes every other TryWrite and every Write.
type takeEveryOther struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	tries int
	took  int
}

func (w *takeEveryOther) TryWrite(p []byte) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tries++
	if w.tries%2 == 0 {
		return false, nil
	}
	w.took++
	w.buf.Write(p)
	return true, nil
}

func (w *takeEveryOther) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Bytes written by TryWrite and by Write, in turns, arrive whole and in
// order, and the end of stream ends the copy.
func TestCopyFromTCPMixesTryWriteAndWrite(t *testing.T) {
	send, recv := loopbackPair(t)
	dst := &takeEveryOther{}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := copyFromTCP(dst, recv)
		done <- result{n, err}
	}()
	var want bytes.Buffer
	for i := range 200 {
		msg := fmt.Appendf(nil, "message %03d;", i)
		want.Write(msg)
		if _, err := send.Write(msg); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond) // let reads empty the queue
		}
	}
	if err := send.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the copy did not end at the end of stream")
	}
	if r.err != nil || r.n != int64(want.Len()) {
		t.Fatalf("copied %d bytes, err %v; want %d", r.n, r.err, want.Len())
	}
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if !bytes.Equal(dst.buf.Bytes(), want.Bytes()) {
		t.Fatalf("copied %q\nwant %q", dst.buf.Bytes(), want.Bytes())
	}
	if dst.took == 0 || dst.tries < 2 {
		t.Fatalf("TryWrite took %d of %d: want both ways used", dst.took, dst.tries)
	}
}
