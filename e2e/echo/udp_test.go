package echo

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestUDPEcho(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close() // only to find a free port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	pod := testPod
	go func() { done <- Run(ctx, Config{UDPAddr: addr, Pod: &pod}, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	var out bytes.Buffer
	cfg := ClientConfig{UDPAddr: addr, Message: "hi udp", Count: 2, Timeout: 3 * time.Second}
	if err := RunClient(context.Background(), cfg, &out); err != nil {
		t.Fatalf("RunClient: %v", err)
	}
	dec := json.NewDecoder(&out)
	for i := range 2 {
		var res Result
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
		if res.Proto != "udp" || res.Reply == nil || res.Reply.Pod.Name != "echo-1" || res.Echo == nil || *res.Echo != "hi udp" {
			t.Fatalf("result %d = %+v", i, res)
		}
		if host, _, _ := net.SplitHostPort(res.Reply.Source); host != "127.0.0.1" {
			t.Errorf("source %q, want 127.0.0.1:port", res.Reply.Source)
		}
	}
}
