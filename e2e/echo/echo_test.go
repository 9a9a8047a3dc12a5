package echo

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testPod = Pod{Name: "echo-1", Namespace: "demo", IP: "10.244.1.5", Node: "node-1", ServiceAccount: "echo", Hostname: "echo-1"}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startServer runs the echo server on loopback and returns its HTTP, TCP
// and gRPC addresses.
func startServer(t *testing.T) (httpAddr, tcpAddr, grpcAddr string) {
	t.Helper()
	httpAddr, tcpAddr, grpcAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	pod := testPod
	go func() {
		done <- Run(ctx, Config{HTTPAddr: httpAddr, TCPAddr: tcpAddr, GRPCAddr: grpcAddr, Pod: &pod}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		up := 0
		for _, a := range []string{httpAddr, tcpAddr, grpcAddr} {
			if c, err := net.Dial("tcp", a); err == nil {
				_ = c.Close() // only probing that it listens
				up++
			}
		}
		if up == 3 {
			return httpAddr, tcpAddr, grpcAddr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("echo server did not start")
	return "", "", ""
}

func TestClientAgainstServer(t *testing.T) {
	httpAddr, tcpAddr, grpcAddr := startServer(t)
	tests := []struct {
		name       string
		cfg        ClientConfig
		wantStatus int
		wantProto  string
		wantPath   string
		wantHeader string
		wantEcho   string
	}{
		{name: "http1", cfg: ClientConfig{URL: "http://" + httpAddr + "/hello?x=1", Headers: []string{"X-Test: one"}}, wantStatus: 200, wantProto: "HTTP/1.1", wantPath: "/hello", wantHeader: "one"},
		{name: "h2c", cfg: ClientConfig{URL: "http://" + httpAddr + "/two", H2C: true, Headers: []string{"X-Test: two"}}, wantStatus: 200, wantProto: "HTTP/2.0", wantPath: "/two", wantHeader: "two"},
		{name: "status", cfg: ClientConfig{URL: "http://" + httpAddr + "/x?status=503"}, wantStatus: 503, wantProto: "HTTP/1.1", wantPath: "/x"},
		{name: "tcp", cfg: ClientConfig{TCPAddr: tcpAddr, Message: "ping\n"}, wantProto: "tcp", wantEcho: "ping\n"},
		{name: "grpc", cfg: ClientConfig{GRPCAddr: grpcAddr}, wantProto: "grpc", wantPath: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := RunClient(context.Background(), tt.cfg, &out); err != nil {
				t.Fatalf("RunClient: %v", err)
			}
			var res Result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("parse %q: %v", out.String(), err)
			}
			if res.Status != tt.wantStatus || res.Proto != tt.wantProto {
				t.Errorf("status, proto = %d, %s; want %d, %s", res.Status, res.Proto, tt.wantStatus, tt.wantProto)
			}
			if res.Reply == nil {
				t.Fatalf("no reply in %s", out.String())
			}
			if diff := cmp.Diff(testPod, res.Reply.Pod); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(res.Reply.Source, "127.0.0.1:") {
				t.Errorf("source = %q, want 127.0.0.1:port", res.Reply.Source)
			}
			if res.Reply.Path != tt.wantPath {
				t.Errorf("path = %q, want %q", res.Reply.Path, tt.wantPath)
			}
			if got := strings.Join(res.Reply.Headers["X-Test"], ","); got != tt.wantHeader {
				t.Errorf("X-Test = %q, want %q", got, tt.wantHeader)
			}
			if tt.wantEcho != "" && (res.Echo == nil || *res.Echo != tt.wantEcho) {
				t.Errorf("echo = %v, want %q", res.Echo, tt.wantEcho)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	httpAddr, _, _ := startServer(t)
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != 200 {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"server without listeners", Config{}.Validate(), true},
		{"tls without cert", Config{TLSAddr: ":1"}.Validate(), true},
		{"server ok", Config{HTTPAddr: ":8080"}.Validate(), false},
		{"client without target", ClientConfig{}.Validate(), true},
		{"client both targets", ClientConfig{URL: "http://a", TCPAddr: "a:1"}.Validate(), true},
		{"client grpc and tcp", ClientConfig{GRPCAddr: "a:1", TCPAddr: "a:1"}.Validate(), true},
		{"client grpc", ClientConfig{GRPCAddr: "a:1"}.Validate(), false},
		{"client bad scheme", ClientConfig{URL: "ftp://a"}.Validate(), true},
		{"client bad header", ClientConfig{URL: "http://a", Headers: []string{"nocolon"}}.Validate(), true},
		{"client ok", ClientConfig{URL: "http://a", Headers: []string{"A: b"}}.Validate(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", tt.err, tt.wantErr)
			}
		})
	}
}
