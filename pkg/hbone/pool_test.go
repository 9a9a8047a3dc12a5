package hbone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestThousandStreamsOneConn runs 1000 concurrent echo streams over one
// pooled connection.
func TestThousandStreamsOneConn(t *testing.T) {
	const n = 1000
	ts := newSetup(t, echoHandler(), nil, func(c *PoolConfig) { c.MaxStreamsPerConn = n })
	var wg sync.WaitGroup
	errs := make(chan error, n)
	opened := make(chan struct{}, n)
	release := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				s, err := ts.pool.Dial(context.Background(), ts.key, "10.0.0.1:80", nil)
				if err != nil {
					return err
				}
				defer func() { _ = s.Close() }()
				opened <- struct{}{}
				<-release // hold every stream open at once
				msg := fmt.Sprintf("stream %d", i)
				if _, err := s.Write([]byte(msg)); err != nil {
					return err
				}
				if err := s.CloseWrite(); err != nil {
					return err
				}
				b, err := io.ReadAll(s)
				if err != nil {
					return err
				}
				if string(b) != msg {
					return fmt.Errorf("echo %q, want %q", b, msg)
				}
				return nil
			}()
		}()
	}
	for range n {
		select {
		case <-opened:
		case err := <-errs:
			t.Fatalf("stream failed before all opened: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("timed out opening streams")
		}
	}
	if st := ts.pool.Stats()[ts.key]; st.Conns != 1 || st.Streams != n {
		t.Fatalf("pool stats with all streams open = %+v, want 1 conn %d streams", st, n)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// countingDial wraps the default dial and counts calls, optionally holding
// each dial until gate is closed.
type countingDial struct {
	n    atomic.Int32
	gate chan struct{}
}

func (d *countingDial) dial(ctx context.Context, k Key) (net.Conn, error) {
	d.n.Add(1)
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return dialKey(ctx, k)
}

// TestPoolConcurrency opens streams for several keys at once with a small
// per-connection cap and checks the pool dials exactly as many connections
// as needed and never over-fills one. Run it with -race.
func TestPoolConcurrency(t *testing.T) {
	const perKey, capacity, keys = 60, 10, 3
	hold := make(chan struct{})
	h := HandlerFunc(func(_ context.Context, r *Request) {
		s, _ := r.Accept()
		_, _ = io.Copy(io.Discard, s)
		_ = s.CloseWrite()
	})
	d := &countingDial{}
	ts := newSetup(t, h, nil, func(c *PoolConfig) {
		c.MaxStreamsPerConn = capacity
		c.Dial = d.dial
	})
	var wg sync.WaitGroup
	var failed atomic.Int32
	streams := make(chan *Stream, perKey*keys)
	for k := range keys {
		// Distinct keys for the same server: different source IPs.
		key := NewKey(clientID, []string{serverID}, ts.addr, netip.AddrFrom4([4]byte{127, 0, 0, byte(k + 1)}))
		for range perKey {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := ts.pool.Dial(context.Background(), key, "10.0.0.1:80", nil)
				if err != nil {
					t.Errorf("Dial: %v", err)
					failed.Add(1)
					return
				}
				streams <- s
			}()
		}
	}
	wg.Wait()
	close(hold)
	if failed.Load() > 0 {
		t.FailNow()
	}
	stats := ts.pool.Stats()
	if len(stats) != keys {
		t.Fatalf("pool has %d keys, want %d", len(stats), keys)
	}
	for k, st := range stats {
		if st.Conns != perKey/capacity || st.Streams != perKey {
			t.Errorf("key %v: %+v, want %d conns %d streams", k.SrcIP, st, perKey/capacity, perKey)
		}
	}
	if got, want := int(d.n.Load()), keys*perKey/capacity; got != want {
		t.Errorf("dials = %d, want %d", got, want)
	}
	close(streams)
	for s := range streams {
		_ = s.CloseWrite()
		_, _ = io.ReadAll(s)
		_ = s.Close()
	}
	for k := range stats {
		waitFor(t, func() bool { return ts.pool.Stats()[k].Streams == 0 })
	}
}

// TestSingleDialInFlight checks that concurrent Dials for one key wait for
// a single connection attempt, and that a caller's context ends its wait.
func TestSingleDialInFlight(t *testing.T) {
	d := &countingDial{gate: make(chan struct{})}
	ts := newSetup(t, echoHandler(), nil, func(c *PoolConfig) { c.Dial = d.dial })
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := ts.pool.Dial(context.Background(), ts.key, "10.0.0.1:80", nil)
			if err != nil {
				t.Errorf("Dial: %v", err)
				return
			}
			_ = s.Close()
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ts.pool.Dial(ctx, ts.key, "10.0.0.1:80", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial with expiring context = %v, want deadline exceeded", err)
	}
	if got := d.n.Load(); got != 1 {
		t.Errorf("dials in flight = %d, want 1", got)
	}
	close(d.gate)
	wg.Wait()
	if got := d.n.Load(); got != 1 {
		t.Errorf("dials = %d, want 1", got)
	}
}

func TestPoolIdleRelease(t *testing.T) {
	ts := newSetup(t, echoHandler(), nil, func(c *PoolConfig) { c.IdleTimeout = 100 * time.Millisecond })
	s := ts.dial(t, nil)
	_ = s.CloseWrite()
	_, _ = io.ReadAll(s)
	_ = s.Close()
	if st := ts.pool.Stats()[ts.key]; st.Conns != 1 {
		t.Fatalf("stats after stream = %+v, want 1 conn", st)
	}
	waitFor(t, func() bool { _, ok := ts.pool.Stats()[ts.key]; return !ok })
	// The key dials again afterwards.
	s = ts.dial(t, nil)
	_ = s.Close()
}

func TestKeepalivePingsKeepIdleConnAlive(t *testing.T) {
	ts := newSetup(t, echoHandler(),
		func(s *Server) {
			s.Limits.PingInterval, s.Limits.PingTimeout = 40*time.Millisecond, 300*time.Millisecond
		},
		func(c *PoolConfig) {
			c.Limits.PingInterval, c.Limits.PingTimeout = 40*time.Millisecond, 300*time.Millisecond
		})
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	time.Sleep(700 * time.Millisecond) // two ping timeouts without traffic
	if _, err := s.Write([]byte("hi")); err != nil {
		t.Fatalf("Write after idle period: %v", err)
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(s, b); err != nil {
		t.Fatalf("Read after idle period: %v", err)
	}
}

func TestIdentityMismatch(t *testing.T) {
	t.Run("server presents an unexpected identity", func(t *testing.T) {
		ts := newSetup(t, echoHandler(), nil, nil)
		key := NewKey(clientID, []string{"spiffe://cluster.local/ns/other/sa/x"}, ts.addr, netip.Addr{})
		_, err := ts.pool.Dial(context.Background(), key, "10.0.0.1:80", nil)
		if err == nil {
			t.Fatal("Dial succeeded against the wrong server identity")
		}
	})
	t.Run("pool checks the SAN even when the TLS config does not", func(t *testing.T) {
		ts := newSetup(t, echoHandler(), nil, nil)
		cert := ts.mesh.ca.MustIssue(mustID(clientID))
		lax := func(Key) (*tls.Config, error) {
			return &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}, InsecureSkipVerify: true,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.TLSCertificate(), nil }}, nil
		}
		pool, err := NewPool(PoolConfig{TLSConfig: lax})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pool.Close() }()
		key := NewKey(clientID, []string{"spiffe://cluster.local/ns/other/sa/x"}, ts.addr, netip.Addr{})
		if _, err := pool.Dial(context.Background(), key, "10.0.0.1:80", nil); !errors.Is(err, ErrIdentityMismatch) {
			t.Fatalf("Dial = %v, want ErrIdentityMismatch", err)
		}
	})
	t.Run("server refuses a client from another CA", func(t *testing.T) {
		ts := newSetup(t, echoHandler(), nil, nil)
		other := newMesh()
		pool, err := NewPool(PoolConfig{TLSConfig: func(k Key) (*tls.Config, error) {
			cfg, err := other.clientTLS(t, clientID)(k)
			if err != nil {
				return nil, err
			}
			cfg.InsecureSkipVerify, cfg.VerifyConnection = true, nil // trust any server, to isolate the server's check
			return cfg, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pool.Close() }()
		if s, err := pool.Dial(context.Background(), ts.key, "10.0.0.1:80", nil); err == nil {
			_ = s.Close()
			t.Fatal("server accepted a client certificate from an untrusted CA")
		}
	})
}

// TestPerConnAndPerPeerLimits checks streams over a limit are refused with
// REFUSED_STREAM.
func TestPerConnAndPerPeerLimits(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Server)
	}{
		{"per connection", func(s *Server) { s.Limits.MaxConcurrentStreams = 2 }},
		{"per peer", func(s *Server) { s.MaxStreamsPerPeer = 2 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := HandlerFunc(func(_ context.Context, r *Request) {
				s, _ := r.Accept()
				_, _ = io.Copy(io.Discard, s)
			})
			// The pool caps at 3 so it does not itself stop at the server's 2.
			ts := newSetup(t, h, tt.mod, func(c *PoolConfig) { c.MaxStreamsPerConn = 3 })
			if tt.name == "per connection" {
				// Make the pool believe the server allows more than it does.
				ts.pool.cfg.MaxStreamsPerConn = 3
			}
			a, b := ts.dial(t, nil), ts.dial(t, nil)
			defer func() { _ = a.Close() }()
			defer func() { _ = b.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := ts.pool.Dial(ctx, ts.key, "10.0.0.1:80", nil)
			if tt.name == "per connection" {
				// The pool respects the advertised limit and dials a second
				// connection instead.
				if err != nil {
					t.Fatalf("Dial over the per-connection limit: %v", err)
				}
				_ = s.Close()
				if st := ts.pool.Stats()[ts.key]; st.Conns != 2 {
					t.Errorf("stats = %+v, want 2 conns", st)
				}
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("third stream for one peer: %v, want ErrRefused", err)
			}
		})
	}
}

// TestKeepaliveClosesDeadPeer runs the pool against a peer that completes
// TLS and sends SETTINGS but then never answers, and checks the pool drops
// the connection after PingTimeout.
func TestKeepaliveClosesDeadPeer(t *testing.T) {
	m := newMesh()
	ln := listen(t)
	scfg := m.serverTLS(t, serverID)
	acceptLoop(ln, func(c net.Conn) {
		tc := tls.Server(c, scfg)
		if tc.Handshake() != nil {
			return
		}
		_, _ = tc.Write(appendSettings(nil, false))
		_, _ = io.Copy(io.Discard, tc) // read everything, answer nothing
	})
	pool, err := NewPool(PoolConfig{
		TLSConfig: m.clientTLS(t, clientID),
		Limits:    Limits{PingInterval: 30 * time.Millisecond, PingTimeout: 150 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pool.Close() }()
	key := NewKey(clientID, []string{serverID}, ln.Addr().(*net.TCPAddr).AddrPort(), netip.Addr{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The dial succeeds (SETTINGS arrived) but the CONNECT is never answered;
	// the dead connection is detected and fails the waiting Dial.
	_, err = pool.Dial(ctx, key, "10.0.0.1:80", nil)
	if err == nil {
		t.Fatal("Dial succeeded against a dead peer")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v: the dead connection was not detected before the caller's deadline", err)
	}
	waitFor(t, func() bool { _, ok := pool.Stats()[key]; return !ok })
}
