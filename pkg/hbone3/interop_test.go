package hbone3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"github.com/weftmesh/weft/pkg/hbone"
)

// TestInteropStockClient: quic-go's own http3.Transport, with nothing but
// a mesh client certificate, tunnels through our server.
func TestInteropStockClient(t *testing.T) {
	m := newMesh()
	addr := startServer(t, &Server{TLSConfig: m.serverTLS(t, serverID), HandleStream: echoStreams})
	base, err := m.clientTLS(t, clientID)(hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{}))
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := base.Clone()
	tlsConf.NextProtos = []string{http3.NextProtoH3}
	tr := &http3.Transport{TLSClientConfig: tlsConf}
	defer tr.Close()
	pr, pw := io.Pipe()
	req := &http.Request{
		Method: http.MethodConnect,
		Host:   "10.0.0.9:443",
		URL:    &url.URL{Scheme: "https", Host: addr.String()},
		Header: http.Header{},
		Body:   pr,
	}
	resp, err := tr.RoundTrip(req.WithContext(testCtx(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	go func() {
		_, _ = pw.Write([]byte("hello over h3"))
		_ = pw.Close()
	}()
	back, err := io.ReadAll(resp.Body)
	if err != nil || string(back) != "hello over h3" {
		t.Fatalf("echo %q, %v", back, err)
	}
}

// TestInteropStockServer: our Pool tunnels through quic-go's own
// http3.Server, whose handler takes the stream over and echoes.
func TestInteropStockServer(t *testing.T) {
	m := newMesh()
	srvTLS := m.serverTLS(t, serverID).Clone()
	srvTLS.NextProtos = []string{http3.NextProtoH3}
	var authority, peer string
	h3 := &http3.Server{
		TLSConfig: srvTLS,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			authority = r.Host
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				peer = hbone.PeerIdentity(r.TLS.PeerCertificates[0])
			}
			w.WriteHeader(http.StatusOK)
			str, err := w.(http3.HTTPStreamer).HTTPStream()
			if err != nil {
				return
			}
			_, _ = io.Copy(str, str)
			_ = str.Close()
		}),
	}
	pc := listenUDP(t)
	go func() { _ = h3.Serve(pc) }()
	t.Cleanup(func() { _ = h3.Close() })
	addr := pc.LocalAddr().String()
	p := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	key := hbone.NewKey(clientID, []string{serverID}, netip.MustParseAddrPort(addr), netip.Addr{})
	s, err := p.Dial(testCtx(t), key, "10.1.2.3:9000", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _ = s.Write([]byte("ping"))
	_ = s.CloseWrite()
	back, err := io.ReadAll(s)
	if err != nil || string(back) != "ping" {
		t.Fatalf("echo %q, %v", back, err)
	}
	if authority != "10.1.2.3:9000" || peer != clientID {
		t.Errorf("stock server saw authority %q peer %q", authority, peer)
	}
}

// TestIdentityChecks: the client refuses a server with the wrong identity,
// and the server refuses a client whose certificate another CA signed or
// that presents none.
func TestIdentityChecks(t *testing.T) {
	m := newMesh()
	addr := startServer(t, &Server{TLSConfig: m.serverTLS(t, serverID), HandleStream: echoStreams})

	t.Run("wrong server identity", func(t *testing.T) {
		p := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
		key := hbone.NewKey(clientID, []string{otherID}, addr, netip.Addr{})
		_, err := p.Dial(testCtx(t), key, "10.0.0.1:80", nil)
		if err == nil || !strings.Contains(err.Error(), "verify server certificate") {
			t.Fatalf("dial: %v, want a server verification error", err)
		}
	})
	t.Run("client of another trust root", func(t *testing.T) {
		rogue := newMesh()
		p := newPool(t, PoolConfig{TLSConfig: func(k hbone.Key) (*tls.Config, error) {
			c, err := rogue.clientTLS(t, clientID)(k)
			if err != nil {
				return nil, err
			}
			c = c.Clone()
			c.VerifyConnection = nil // trust any server: only the server's check is under test
			return c, nil
		}})
		key := hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})
		if _, err := p.Dial(testCtx(t), key, "10.0.0.1:80", nil); err == nil {
			t.Fatal("server accepted a client certificate from another CA")
		}
	})
	t.Run("client without certificate", func(t *testing.T) {
		p := newPool(t, PoolConfig{TLSConfig: func(hbone.Key) (*tls.Config, error) {
			return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}, nil //nolint:gosec // the server's refusal is under test
		}})
		key := hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})
		if _, err := p.Dial(testCtx(t), key, "10.0.0.1:80", nil); err == nil {
			t.Fatal("server accepted a client without a certificate")
		}
	})
}

// TestConnectUDP exchanges datagrams over a CONNECT-UDP flow; the server
// sees the target from the RFC 9298 path and the client's identity.
func TestConnectUDP(t *testing.T) {
	m := newMesh()
	targets := make(chan netip.AddrPort, 1)
	addr := startServer(t, &Server{
		TLSConfig:    m.serverTLS(t, serverID),
		HandleStream: echoStreams,
		HandleUDP: func(ctx context.Context, req *UDPRequest) {
			if req.PeerIdentity != clientID {
				_ = req.Reject(http.StatusForbidden)
				return
			}
			targets <- req.Target
			d, err := req.Accept()
			if err != nil {
				return
			}
			defer d.Close()
			for {
				b, err := d.ReadDatagram(ctx)
				if err != nil {
					return
				}
				if err := d.WriteDatagram(append([]byte("re:"), b...)); err != nil {
					return
				}
			}
		},
	})
	p := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	key := hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	ctx := testCtx(t)
	want := netip.MustParseAddrPort("10.0.3.4:5353")
	d, err := p.DialUDP(ctx, key, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := <-targets; got != want {
		t.Errorf("server saw target %s, want %s", got, want)
	}
	for i := range 5 {
		msg := []byte{'d', byte('0' + i)}
		if err := d.WriteDatagram(msg); err != nil {
			t.Fatal(err)
		}
		back, err := d.ReadDatagram(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, append([]byte("re:"), msg...)) {
			t.Fatalf("datagram %q, want re:%q", back, msg)
		}
	}
	if err := d.WriteDatagram(make([]byte, 64<<10)); !errors.Is(err, ErrDatagramTooLarge) {
		t.Errorf("a 64 KiB datagram: %v, want ErrDatagramTooLarge", err)
	}
}
