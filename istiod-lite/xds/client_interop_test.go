package xds

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/weftmesh/weft/istiod-lite/model"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
	"google.golang.org/grpc"
)

// state is a minimal consumer of the shared client.
type state struct {
	mu     sync.Mutex
	have   map[string]string
	reject bool
}

func (s *state) Apply(typeURL string, rs []*discoveryv3.Resource, removed []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject {
		return errors.New("rejected by test")
	}
	for _, r := range rs {
		s.have[typeURL+" "+r.Name] = r.Version
	}
	for _, n := range removed {
		delete(s.have, typeURL+" "+n)
	}
	return nil
}

func (s *state) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.have[k]
	return ok
}

// TestSharedClientInterop runs pkg/xds against this server, including a
// server restart that the client resumes from.
func TestSharedClientInterop(t *testing.T) {
	h := newHarness(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	g := grpc.NewServer(ServerOptions()...)
	h.srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()

	st := &state{have: map[string]string{}}
	c := xdsclient.NewClient(xdsclient.Config{Address: addr, Types: []string{model.AddressType, model.AuthorizationType}, Handler: st, Log: slog.New(slog.DiscardHandler), InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("client Run: %v", err)
		}
	}()

	select {
	case <-c.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("client never synced")
	}
	if !st.has(model.AddressType + " " + uid(2)) {
		t.Fatal("initial state missing")
	}
	h.m.UpsertPod(pod(42, true))
	waitFor(t, func() bool { return st.has(model.AddressType + " " + uid(42)) })

	// Restart the server's listener; the client resumes.
	g.Stop()
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		t.Errorf("grpc Serve: %v", err)
	}
	h.m.DeletePod("ns", "p42")
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	g2 := grpc.NewServer(ServerOptions()...)
	h.srv.Register(g2)
	served2 := make(chan error, 1)
	go func() { served2 <- g2.Serve(lis2) }()
	defer func() {
		g2.Stop()
		if err := <-served2; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("grpc Serve after restart: %v", err)
		}
	}()
	waitFor(t, func() bool { return !st.has(model.AddressType + " " + uid(42)) })
	if s := c.Status(); s.Streams < 2 || !s.Connected {
		t.Errorf("status %+v", s)
	}
}
