package upstream

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/netip"
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

func newTestDialer(t *testing.T) *Dialer {
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

type fullLimiter struct{}

var errFull = errors.New("limit reached")

func (fullLimiter) AcquireConn() (func(), error) { return nil, errFull }

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
		name    string
		addr    func(t *testing.T) netip.AddrPort
		limiter ConnLimiter
		want    retry.Kind
		wantIs  error
	}{
		{"refused dial", refusedAddr, nil, retry.KindConnectFailure, retry.ErrConnectFailure},
		{"closed before the response", closingServer, nil, retry.KindReset, retry.ErrReset},
		{"connection limit reached", closingServer, fullLimiter{}, retry.KindOther, errFull},
	}
	d := newTestDialer(t)
	tr := NewTransports(d, time.Second)
	t.Cleanup(tr.Close)
	for _, tt := range tests {
		for name, rt := range map[string]*Transport{"http1": tr.HTTP1, "http2": tr.HTTP2} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if tt.limiter != nil {
					ctx = WithConnLimiter(ctx, tt.limiter)
				}
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
