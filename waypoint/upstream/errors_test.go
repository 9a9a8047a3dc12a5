package upstream

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/retry"
)

type noCerts struct{}

func (noCerts) Get(context.Context, identity.ID) (*identity.Certificate, error) {
	return nil, errors.New("no certificates in this test")
}
func (noCerts) Roots() *x509.CertPool { return x509.NewCertPool() }

// plainWorkloads knows no workloads, so every endpoint is dialed over
// plain TCP.
type plainWorkloads struct{}

func (plainWorkloads) WorkloadByIP(wds.NetAddr) *wds.Workload { return nil }

func newTestDialer(t testing.TB) *Dialer {
	t.Helper()
	d, err := NewDialer(Config{Certs: noCerts{}, Workloads: plainWorkloads{}, ConnectTimeout: 2 * time.Second,
		Identity: identity.MustParseID("spiffe://cluster.local/ns/demo/sa/waypoint")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	_ = ln.Close()
	return a
}

// closingServer accepts connections, reads a request's head and closes the
// connection without answering.
func closingServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// hangingServer accepts connections, reads a request's head and never
// answers; accepted receives each connection.
func hangingServer(t *testing.T, accepted chan<- struct{}) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			accepted <- struct{}{}
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

var errFull = errors.New("limit reached")

// oneConn allows one connection.
type oneConn struct {
	mu   sync.Mutex
	open int
}

func (l *oneConn) AcquireConn() (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= 1 {
		return nil, errFull
	}
	l.open++
	return func() { l.mu.Lock(); l.open--; l.mu.Unlock() }, nil
}

func TestDialFailureIsConnectFailure(t *testing.T) {
	d := newTestDialer(t)
	_, err := d.Dial(context.Background(), refusedAddr(t), nil)
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if k := retry.Classify(err); k != retry.KindConnectFailure {
		t.Errorf("Classify(%v) = %v, want connect-failure", err, k)
	}
}

func TestTransportErrorsClassified(t *testing.T) {
	tests := []struct {
		name   string
		addr   func(t *testing.T) netip.AddrPort
		want   retry.Kind
		wantIs error
	}{
		{"refused dial", refusedAddr, retry.KindConnectFailure, retry.ErrConnectFailure},
		{"closed before the response", closingServer, retry.KindReset, retry.ErrReset},
	}
	d := newTestDialer(t)
	tr := NewTransports(d, time.Second)
	t.Cleanup(tr.Close)
	for _, tt := range tests {
		for name, rt := range map[string]http.RoundTripper{"http1": tr.HTTP1, "http1-fallback": tr.HTTP1.Fallback, "http2": tr.HTTP2} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tt.addr(t).String()+"/", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := rt.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
					t.Fatal("round trip succeeded")
				}
				if k := retry.Classify(err); k != tt.want {
					t.Errorf("Classify(%v) = %v, want %v", err, k, tt.want)
				}
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("error %v is not %v", err, tt.wantIs)
				}
			})
		}
	}
}

// TestTransportConnectionLimit: a second connection to an endpoint needs
// a slot (the overflow is returned unmarked, not retried), but an endpoint
// without a connection is dialed even when the slots are taken.
func TestTransportConnectionLimit(t *testing.T) {
	d := newTestDialer(t)
	tr := NewTransports(d, time.Second)
	t.Cleanup(tr.Close)
	accepted := make(chan struct{}, 8)
	a, b := hangingServer(t, accepted), hangingServer(t, accepted)
	lim := &oneConn{}
	ctx, cancel := context.WithCancel(WithConnLimiter(context.Background(), lim))
	defer cancel()
	send := func(ep netip.AddrPort) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.String()+"/", nil)
		resp, err := tr.HTTP1.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- send(a) }() // holds the one slot, waiting for an answer
	<-accepted

	err := send(a)
	if !errors.Is(err, errFull) || retry.Classify(err) != retry.KindOther {
		t.Errorf("second connection to a: %v (%v), want the limiter's error, unmarked", err, retry.Classify(err))
	}
	go func() { errs <- send(b) }()
	select {
	case <-accepted:
	case err := <-errs:
		t.Fatalf("first connection to b: %v, want it dialed past the limit", err)
	case <-time.After(5 * time.Second):
		t.Fatal("b was not dialed")
	}
	cancel()
	for range 2 {
		<-errs //nolint:errcheck // only waiting for both goroutines to finish
	}
}
