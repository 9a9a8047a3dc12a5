package hbone

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestHeaderLimits(t *testing.T) {
	big := strings.Repeat("v", 40<<10)
	t.Run("over the limit is answered 431", func(t *testing.T) {
		ts := newSetup(t, echoHandler(), nil, nil)
		_, err := ts.pool.Dial(context.Background(), ts.key, "10.0.0.1:80", http.Header{"X-Big": {big}})
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("Dial = %v, want 431", err)
		}
		// The connection's HPACK state survived: the next stream works.
		s := ts.dial(t, nil)
		_ = s.Close()
	})
	t.Run("large headers span CONTINUATION frames", func(t *testing.T) {
		got := make(chan string, 1)
		h := HandlerFunc(func(ctx context.Context, r *Request) {
			got <- r.Header.Get("X-Big")
			echoHandler().ServeHBONE(ctx, r)
		})
		ts := newSetup(t, h, func(s *Server) {
			s.Limits.MaxFrameSize = 16 << 10
			s.Limits.MaxHeaderListSize = 64 << 10
		}, nil)
		s, err := ts.pool.Dial(context.Background(), ts.key, "10.0.0.1:80", http.Header{"X-Big": {big}})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		_ = s.Close()
		if v := <-got; v != big {
			t.Fatalf("server saw a %d-byte header, want %d", len(v), len(big))
		}
	})
}

func TestWriteDeadlineOnFlowControl(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(_ context.Context, r *Request) {
		s, _ := r.Accept()
		<-release // never read: the client runs out of window
		_ = s
	})
	ts := newSetup(t, h, func(s *Server) { s.Limits.StreamWindow = 64 << 10 }, nil)
	defer close(release)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	_ = s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := s.Write(make([]byte, 1<<20))
	if !errors.Is(err, errTimeout) {
		t.Fatalf("Write = %d, %v; want a deadline error", n, err)
	}
	if n != 64<<10 {
		t.Errorf("wrote %d bytes before blocking, want the 64 KiB window", n)
	}
}

// TestStockClientCancelResetsStream checks a stock client abandoning a
// CONNECT (closing the response body) reaches the handler as a reset.
func TestStockClientCancelResetsStream(t *testing.T) {
	readErr := make(chan error, 1)
	h := HandlerFunc(func(_ context.Context, r *Request) {
		s, _ := r.Accept()
		_, err := io.Copy(io.Discard, s)
		readErr <- err
	})
	ts := newSetup(t, h, nil, nil)
	ccfg, err := ts.mesh.clientTLS(t, clientID)(ts.key)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http2.Transport{TLSClientConfig: ccfg} //nolint:staticcheck // x/net/http2 interop is the point
	defer tr.CloseIdleConnections()               //nolint:staticcheck // x/net/http2 interop is the point
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer func() { _ = pw.Close() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://"+ts.addr.String(), pr)
	resp, err := tr.RoundTrip(req) //nolint:staticcheck // x/net/http2 interop is the point
	if err != nil {
		t.Fatal(err)
	}
	_, _ = pw.Write([]byte("some bytes"))
	_ = resp.Body.Close()
	cancel()
	select {
	case err := <-readErr:
		var se *StreamError
		if !errors.As(err, &se) || !se.Remote {
			t.Fatalf("handler read error = %v, want a reset from the peer", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not see the cancellation")
	}
}
