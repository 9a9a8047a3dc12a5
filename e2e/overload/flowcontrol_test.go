package overload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

const (
	clientID = "spiffe://cluster.local/ns/client/sa/app"
	serverID = "spiffe://cluster.local/ns/server/sa/app"
)

// tunnel is an HBONE server on loopback whose handler floods streams that
// ask for /flood and echoes the others, and a pool dialling it.
type tunnel struct {
	pool *hbone.Pool
	key  hbone.Key
}

func newTunnel(t *testing.T, maxPerPeer int) *tunnel {
	t.Helper()
	ca := identitytest.NewCA("overload")
	srvTLS, err := ca.ServerTLS(serverID)
	if err != nil {
		t.Fatal(err)
	}
	flood := make([]byte, 64<<10)
	srv := &hbone.Server{
		TLSConfig:         srvTLS,
		Logger:            slog.New(slog.DiscardHandler),
		DrainTimeout:      time.Second,
		MaxStreamsPerPeer: maxPerPeer,
		Handler: hbone.HandlerFunc(func(ctx context.Context, r *hbone.Request) {
			s, err := r.Accept()
			if err != nil {
				return
			}
			if r.Authority == "flood:1" {
				for ctx.Err() == nil {
					if _, err := s.Write(flood); err != nil {
						return
					}
				}
				return
			}
			_, _ = io.Copy(s, s)
			_ = s.CloseWrite()
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // owned by the test: stopped in Cleanup
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })

	cliCert := ca.MustIssue(identity.MustParseID(clientID))
	pool, err := hbone.NewPool(hbone.PoolConfig{
		TLSConfig:         func(hbone.Key) (*tls.Config, error) { return ca.ClientTLS(cliCert, serverID) },
		MaxStreamsPerConn: 1000,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	return &tunnel{pool: pool, key: hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})}
}

func (tn *tunnel) dial(t *testing.T, authority string) *hbone.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := tn.pool.Dial(ctx, tn.key, authority, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", authority, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// echoRounds exchanges rounds messages of size bytes on a new stream and
// returns how long that took, or the error that stopped it.
func (tn *tunnel) echoRounds(t *testing.T, rounds, size int) (time.Duration, error) {
	t.Helper()
	s := tn.dial(t, "echo:1")
	msg, back := make([]byte, size), make([]byte, size)
	start := time.Now()
	_ = s.SetDeadline(start.Add(5 * time.Second))
	for i := range rounds {
		_, _ = rand.Read(msg)
		if _, err := s.Write(msg); err != nil {
			return 0, fmt.Errorf("echo round %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(s, back); err != nil {
			return 0, fmt.Errorf("echo round %d: read: %w", i, err)
		}
		if !bytes.Equal(msg, back) {
			t.Fatalf("echo round %d: bytes differ", i)
		}
	}
	return time.Since(start), nil
}

// TestSlowReadersDoNotStallTheConnection: streams whose reader never reads
// (the server floods them until their windows close) share one HBONE
// connection with an echo stream, which must still make progress — even
// when the stalled streams' windows add up to more than the connection's
// (5 × 4 MiB > 16 MiB): the connection window is reopened for buffered
// data up to hbone.DefaultConnReadAhead, so it takes
// (read-ahead + connection window) / stream window = 12 stalled streams to
// stall the connection. At that bound the connection must not buffer more
// than it allows: the flood stops, it does not grow without limit.
func TestSlowReadersDoNotStallTheConnection(t *testing.T) {
	bound := int((hbone.DefaultConnReadAhead + hbone.DefaultConnWindow) / hbone.DefaultStreamWindow)
	for _, slow := range []int{1, 3, 5, 8, bound - 1} {
		t.Run(fmt.Sprintf("%d slow readers", slow), func(t *testing.T) {
			tn := newTunnel(t, 0)
			base, err := tn.echoRounds(t, 50, 16<<10)
			if err != nil {
				t.Fatal(err)
			}
			for range slow {
				tn.dial(t, "flood:1") // never read
			}
			time.Sleep(500 * time.Millisecond) // let the floods fill their windows
			if n := len(tn.pool.Stats()); n != 1 {
				t.Fatalf("want one pooled key, got %d", n)
			}
			st := tn.pool.Stats()[tn.key]
			took, err := tn.echoRounds(t, 50, 16<<10)
			if err != nil {
				t.Fatalf("%d slow readers stalled the connection: %v", slow, err)
			}
			t.Logf("%d slow readers (pool %+v): 50 echo rounds of 16 KiB took %s (alone: %s)", slow, st, took.Round(time.Millisecond), base.Round(time.Millisecond))
		})
	}
}
