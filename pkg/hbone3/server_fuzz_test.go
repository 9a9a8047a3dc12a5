package hbone3

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

// FuzzServeHTTP offers arbitrary requests (method, extended CONNECT
// protocol, path, authority, with or without a client certificate) to the
// server's admission, with handlers that reject, reject twice, try a 2xx
// reject, or do nothing. Only a CONNECT with a verified peer reaches a
// handler; a CONNECT-UDP reaches it only with a path that parses, and
// with that target; every request is answered with exactly one status,
// never a 2xx.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range []struct {
		method, proto, path, host string
		cert                      bool
		action                    uint8
	}{
		{"CONNECT", "HTTP/3.0", "", "10.0.0.1:8080", true, 1},
		{"CONNECT", "HTTP/3.0", "", "", true, 0},
		{"CONNECT", ConnectUDP, "/.well-known/masque/udp/10.0.0.1/53/", "", true, 1},
		{"CONNECT", ConnectUDP, "/.well-known/masque/udp/2001%3Adb8%3A%3A1/53/", "", true, 2},
		{"CONNECT", ConnectUDP, "/.well-known/masque/udp/example.com/53/", "", true, 1},
		{"CONNECT", "webtransport", "/", "", true, 1},
		{"CONNECT", "HTTP/3.0", "", "10.0.0.1:8080", false, 1},
		{"GET", "HTTP/3.0", "/", "10.0.0.1:8080", true, 1},
		{"connect", "HTTP/3.0", "", "10.0.0.1:8080", true, 3},
	} {
		f.Add(s.method, s.proto, s.path, s.host, s.cert, s.action, true)
	}
	f.Add("CONNECT", ConnectUDP, "/.well-known/masque/udp/10.0.0.1/53/", "", true, uint8(1), false)

	ca := identitytest.NewCA("hbone3-fuzz")
	leaf := ca.MustIssue(identity.MustParseID("spiffe://cluster.local/ns/demo/sa/client")).Leaf
	peer := "spiffe://cluster.local/ns/demo/sa/client"

	f.Fuzz(func(t *testing.T, method, proto, path, host string, withCert bool, action uint8, udp bool) {
		var streams, udps int
		var gotTarget string
		answer := func(b *requestBase) {
			if b.PeerIdentity != peer {
				t.Fatalf("handler sees peer %q, want %q", b.PeerIdentity, peer)
			}
			switch action % 4 {
			case 1:
				if err := b.Reject(http.StatusForbidden); err != nil {
					t.Fatalf("first Reject: %v", err)
				}
			case 2:
				if err := b.Reject(http.StatusOK); err == nil {
					t.Fatal("Reject(200) accepted")
				}
			case 3:
				if err := b.Reject(http.StatusForbidden); err != nil {
					t.Fatalf("first Reject: %v", err)
				}
				if err := b.Reject(http.StatusBadGateway); err == nil {
					t.Fatal("second Reject accepted")
				}
			}
		}
		s := &Server{
			HandleStream: func(_ context.Context, req *Request) {
				streams++
				if req.Authority != host {
					t.Fatalf("authority %q, sent %q", req.Authority, host)
				}
				answer(&req.requestBase)
			},
		}
		if udp {
			s.HandleUDP = func(_ context.Context, req *UDPRequest) {
				udps++
				gotTarget = req.Target.String()
				answer(&req.requestBase)
			}
		}
		r := &http.Request{Method: method, Proto: proto, URL: &url.URL{Path: path}, Host: host, Header: http.Header{}}
		r = r.WithContext(context.Background())
		if withCert {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		}
		w := httptest.NewRecorder()
		s.serveHTTP(w, r)

		code := w.Code
		if code >= 200 && code < 300 { // also a request never answered
			t.Fatalf("answered %d", code)
		}
		reached := streams + udps
		want := func(status int, handler bool) {
			t.Helper()
			if code != status && !handler {
				t.Fatalf("%s %q %q: status %d, want %d", method, proto, path, code, status)
			}
			if handler != (reached == 1) || reached > 1 {
				t.Fatalf("%s %q %q: handlers called %d times, want %v", method, proto, path, reached, handler)
			}
		}
		switch {
		case method != http.MethodConnect:
			want(http.StatusMethodNotAllowed, false)
			if w.Header().Get("Allow") != http.MethodConnect {
				t.Fatalf("405 without Allow: CONNECT: %v", w.Header())
			}
		case !withCert:
			want(http.StatusUnauthorized, false)
		case proto == ConnectUDP && !udp:
			want(http.StatusNotImplemented, false)
		case proto == ConnectUDP:
			target, err := parseUDPPath(path)
			if err != nil {
				want(http.StatusBadRequest, false)
				break
			}
			want(0, true)
			if gotTarget != target.String() {
				t.Fatalf("handler got target %s, path %q says %s", gotTarget, path, target)
			}
		case proto == "HTTP/3.0":
			want(0, true)
		default:
			want(http.StatusNotImplemented, false)
		}
		if reached == 1 {
			wantCode := map[uint8]int{0: http.StatusServiceUnavailable, 1: http.StatusForbidden, 2: http.StatusServiceUnavailable, 3: http.StatusForbidden}[action%4]
			if code != wantCode {
				t.Fatalf("handler action %d answered %d, want %d", action%4, code, wantCode)
			}
		}
	})
}

// datagramStream is a rawStream whose received datagrams are scripted and
// whose sent ones are recorded.
type datagramStream struct {
	rawStream
	in   [][]byte
	sent [][]byte
}

var errNoMore = errors.New("no more datagrams")

func (d *datagramStream) ReceiveDatagram(context.Context) ([]byte, error) {
	if len(d.in) == 0 {
		return nil, errNoMore
	}
	b := d.in[0]
	d.in = d.in[1:]
	return b, nil
}

func (d *datagramStream) SendDatagram(b []byte) error {
	d.sent = append(d.sent, bytes.Clone(b))
	return nil
}

func (d *datagramStream) CancelRead(quic.StreamErrorCode) {}
func (d *datagramStream) Close() error                    { return nil }

// FuzzDatagrams feeds arbitrary HTTP datagrams (split from the input at
// 0xff bytes) to a CONNECT-UDP flow: only the payloads of well-formed
// context-0 datagrams come out, unchanged and in order; every other
// datagram is dropped. Each payload written goes out as exactly one
// context-0 datagram that reads back as the same payload.
func FuzzDatagrams(f *testing.F) {
	f.Add([]byte("\x00hello\xff\x01dropped\xff\x00\xff\x40\x00two-byte zero\xff\x80\x00\x00\x00four\xff\xc0"))
	f.Add([]byte("\xff\xff\x00"))
	f.Add([]byte("\x3fnot zero"))
	f.Fuzz(func(t *testing.T, in []byte) {
		grams := bytes.Split(in, []byte{0xff})
		var want [][]byte
		for _, g := range grams {
			if len(g) == 0 {
				continue
			}
			id, n, err := quicvarint.Parse(g)
			if err == nil && id == udpContextID {
				want = append(want, g[n:])
			}
		}
		str := &datagramStream{}
		for _, g := range grams {
			if len(g) > 0 {
				str.in = append(str.in, g)
			}
		}
		d := newDatagramConn(str, netip.MustParseAddrPort("10.0.0.1:53"), nil, nil, "", nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var got [][]byte
		for {
			p, err := d.ReadDatagram(ctx)
			if err != nil {
				if !errors.Is(err, errNoMore) {
					t.Fatalf("read: %v", err)
				}
				break
			}
			got = append(got, p)
		}
		if len(got) != len(want) {
			t.Fatalf("read %d payloads, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("payload %d: %q, want %q", i, got[i], want[i])
			}
		}
		for _, p := range want {
			if err := d.WriteDatagram(p); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		back := &datagramStream{in: str.sent}
		r := newDatagramConn(back, d.Target(), nil, nil, "", nil)
		for i, p := range want {
			q, err := r.ReadDatagram(ctx)
			if err != nil || !bytes.Equal(p, q) {
				t.Fatalf("payload %d written as %q read back as %q, %v", i, p, q, err)
			}
		}
		if _, err := r.ReadDatagram(ctx); !errors.Is(err, errNoMore) && !errors.Is(err, io.EOF) {
			t.Fatalf("extra datagrams written: %v", err)
		}
		_ = d.Close()
	})
}
