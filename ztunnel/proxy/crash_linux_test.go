//go:build linux

package proxy_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestCrashResetsApplicationConnections kills a ztunnel process (SIGKILL)
// while it carries two connections from pod a to pod b, one streaming
// towards the client, the other towards the server, each one-way so that
// ztunnel's socket facing the receiving application holds no unread
// data (the kernel would reset such a socket anyway). Both receiving
// applications must see ECONNRESET: a clean end of stream (FIN) would
// silently truncate what they received.
func TestCrashResetsApplicationConnections(t *testing.T) {
	top := newTopology(t, map[string]string{"a": ipA, "b": ipB}, "a", "b")
	b := top.ns["b"]
	serverErr := make(chan error, 2)
	chunk := make([]byte, 1024)
	// :8080 streams to the client until the write fails; :8081 reads
	// until the read fails.
	serve(t, b, 8080, func(c net.Conn) {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	serve(t, b, 8081, func(c net.Conn) {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			err = io.EOF
		}
		serverErr <- err
	})
	z := startZtunnel(t, childSpec{Prefix: top.prefix,
		Clients: []childPod{{"a", ipA, "client"}}, Servers: []childPod{{"b", ipB, "server"}}})

	down, err := dialIn(top.ns["a"], ipB+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = down.Close() }()
	up, err := dialIn(top.ns["a"], ipB+":8081")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = up.Close() }()
	// Both streams flowing through ztunnel.
	_ = down.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(down, make([]byte, 64<<10)); err != nil {
		t.Fatalf("download before the crash: %v", err)
	}
	for range 64 {
		if _, err := up.Write(chunk); err != nil {
			t.Fatalf("upload before the crash: %v", err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the upload reaches the server

	z.kill()

	// The client reads what was in flight, then must see the reset.
	_ = down.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, down)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
	case err == nil:
		t.Error("client: a clean end of stream (FIN) after ztunnel died, not a reset: a silent truncation")
	default:
		t.Errorf("client: %v, want ECONNRESET", err)
	}
	select {
	case err := <-serverErr:
		if errors.Is(err, io.EOF) {
			t.Error("server: a clean end of stream (FIN) after ztunnel died, not a reset: a silent truncation")
		} else if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("server: %v, want ECONNRESET", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("server: its connection did not end within 5 s of ztunnel's death")
	}
}

// TestCleanEndIsGraceful: with the sockets set to reset on close, a
// connection that ends cleanly must still end with a FIN after every byte
// (linger is switched off before the close). Each receiving application
// half-closes at once and reads late, so ztunnel's splice ends while most
// of the payload still waits in the kernel's buffers.
func TestCleanEndIsGraceful(t *testing.T) {
	m := newMesh(t, map[string]string{"a": ipA, "b": ipB})
	const size = 4 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	readLate := func(c net.Conn) ([]byte, error) {
		closeWrite(c)
		time.Sleep(300 * time.Millisecond)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		return io.ReadAll(c)
	}
	check := func(who string, got []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: read after %d bytes: %v (want every byte, then a FIN)", who, len(got), err)
		}
		if len(got) != size {
			t.Fatalf("%s: got %d bytes, then a clean end; want %d", who, len(got), size)
		}
		for i := range got {
			if got[i] != payload[i] {
				t.Fatalf("%s: byte %d differs", who, i)
			}
		}
	}
	// :8082 sends the payload and closes; :8083 receives one.
	serve(t, m.top.ns["b"], 8082, func(c net.Conn) { _, _ = c.Write(payload) })
	type read struct {
		b   []byte
		err error
	}
	received := make(chan read, 1)
	serve(t, m.top.ns["b"], 8083, func(c net.Conn) {
		b, err := readLate(c)
		received <- read{b, err}
	})
	for range 2 {
		c, err := dialIn(m.top.ns["a"], ipB+":8082")
		if err != nil {
			t.Fatal(err)
		}
		got, err := readLate(c)
		_ = c.Close()
		check("client", got, err)

		c, err = dialIn(m.top.ns["a"], ipB+":8083")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		r := <-received
		check("server", r.b, r.err)
	}
	waitFor(t, func() bool { return m.px.OpenConns() == 0 })
}
