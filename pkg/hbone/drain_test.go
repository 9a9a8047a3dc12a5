package hbone

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestGracefulDrain stops a server with a stream open: the stream keeps
// working, new streams are not accepted, and Serve returns once the stream
// is done.
func TestGracefulDrain(t *testing.T) {
	m := newMesh()
	srv := &Server{Handler: echoHandler(), TLSConfig: m.serverTLS(t, serverID), Logger: slog.New(slog.DiscardHandler), DrainTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	pool, err := NewPool(PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pool.Close() }()
	key := NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	s, err := pool.Dial(context.Background(), key, "10.0.0.1:80", nil)
	if err != nil {
		t.Fatal(err)
	}

	cancel() // start draining
	// The pool learns of the GOAWAY and stops using the connection.
	waitFor(t, func() bool { return pool.Stats()[key].Conns == 0 || pool.capacityOf(key) == 0 })
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if s2, err := pool.Dial(dctx, key, "10.0.0.1:80", nil); err == nil {
		_ = s2.Close()
		t.Fatal("new stream accepted while draining")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a stream still open: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// The open stream still works in both directions.
	if _, err := s.Write([]byte("still here")); err != nil {
		t.Fatalf("Write while draining: %v", err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(s)
	if err != nil || string(b) != "still here" {
		t.Fatalf("ReadAll while draining = %q, %v", b, err)
	}
	_ = s.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the last stream ended")
	}
}

func TestDrainTimeoutCutsStreams(t *testing.T) {
	m := newMesh()
	srv := &Server{Handler: echoHandler(), TLSConfig: m.serverTLS(t, serverID), DrainTimeout: 100 * time.Millisecond}
	addr, stop := startServer(t, srv)
	pool, err := NewPool(PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pool.Close() }()
	s, err := pool.Dial(context.Background(), NewKey(clientID, []string{serverID}, addr, netip.Addr{}), "10.0.0.1:80", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("drain took %s, want about the 100ms timeout", d)
	}
	if _, err := io.ReadAll(s); err == nil {
		t.Error("stream survived the drain timeout")
	}
}

// capacityOf returns the free stream slots of key's connections (tests).
func (p *Pool) capacityOf(key Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	if e := p.entries[key]; e != nil {
		for _, pc := range e.conns {
			n += max(p.capacity(pc)-pc.active, 0)
		}
	}
	return n
}

// TestDialRetriesAfterServerRestart closes the server under an idle pooled
// connection and starts a new one on the same address: the next Dial must
// notice the dead connection and succeed on a new one.
func TestDialRetriesAfterServerRestart(t *testing.T) {
	m := newMesh()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	serve := func(ln net.Listener) (stop func()) {
		srv := &Server{Handler: echoHandler(), TLSConfig: m.serverTLS(t, serverID), DrainTimeout: time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = srv.Serve(ctx, ln); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := serve(ln)
	pool, err := NewPool(PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pool.Close() }()
	key := NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	s, err := pool.Dial(context.Background(), key, "10.0.0.1:80", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	_, _ = io.ReadAll(s)
	_ = s.Close()
	stop()
	ln2, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	stop2 := serve(ln2)
	defer stop2()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err = pool.Dial(ctx, key, "10.0.0.1:80", nil)
	if err != nil {
		t.Fatalf("Dial after server restart: %v", err)
	}
	_ = s.Close()
}
