package hbone3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"testing"

	"github.com/weftmesh/weft/pkg/hbone"
)

// TestStreamRoundTrip carries a megabyte each way through one stream and
// checks authority, headers, identities both ways and half-close.
func TestStreamRoundTrip(t *testing.T) {
	m := newMesh()
	var mu sync.Mutex
	var got *Request
	addr := startServer(t, &Server{
		TLSConfig: m.serverTLS(t, serverID),
		HandleStream: func(ctx context.Context, req *Request) {
			mu.Lock()
			got = req
			mu.Unlock()
			echoStreams(ctx, req)
		},
	})
	p := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	key := hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	hdr := http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	s, err := p.Dial(testCtx(t), key, "10.0.0.7:8080", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PeerIdentity() != serverID {
		t.Errorf("client sees peer %q, want %q", s.PeerIdentity(), serverID)
	}
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = s.Write(payload)
		_ = s.CloseWrite()
	}()
	back, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatalf("echo differs: got %d bytes, want %d", len(back), len(payload))
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Authority != "10.0.0.7:8080" {
		t.Errorf("authority %q, want 10.0.0.7:8080", got.Authority)
	}
	if got.PeerIdentity != clientID {
		t.Errorf("server sees peer %q, want %q", got.PeerIdentity, clientID)
	}
	if got.Header.Get("Traceparent") != hdr.Get("Traceparent") {
		t.Errorf("traceparent %q not carried", got.Header.Get("Traceparent"))
	}
}

// TestStreamsShareConnection opens many concurrent streams for one key and
// expects a single QUIC connection to carry them.
func TestStreamsShareConnection(t *testing.T) {
	m := newMesh()
	addr := startServer(t, &Server{TLSConfig: m.serverTLS(t, serverID), HandleStream: echoStreams})
	p := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	key := hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := p.Dial(ctx, key, "10.0.0.7:80", nil)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			msg := []byte{byte(i), 1, 2, 3}
			_, _ = s.Write(msg)
			_ = s.CloseWrite()
			back, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(back, msg) {
				errs <- errors.New("echo mismatch")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.Conns(); n != 1 {
		t.Errorf("pool holds %d connections, want 1", n)
	}
}

// TestRejectStatus: a handler's refusal reaches the client as a
// StatusError, and a handler that forgets to answer yields 503.
func TestRejectStatus(t *testing.T) {
	m := newMesh()
	addr := startServer(t, &Server{
		TLSConfig: m.serverTLS(t, serverID),
		HandleStream: func(_ context.Context, req *Request) {
			if req.Authority == "10.0.0.1:1" {
				_ = req.Reject(http.StatusUnauthorized)
			}
		},
	})
	p := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	key := hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	for authority, want := range map[string]int{"10.0.0.1:1": 401, "10.0.0.2:2": 503} {
		_, err := p.Dial(testCtx(t), key, authority, nil)
		var se *hbone.StatusError
		if !errors.As(err, &se) || se.Code != want {
			t.Errorf("dial %s: err %v, want status %d", authority, err, want)
		}
	}
}
