package xds

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fakeServer is a scripted delta ADS server: each stream's requests arrive
// on reqs; the test sends responses through the stream it gets from streams.
type fakeServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	streams chan *fakeStream
}

type fakeStream struct {
	reqs chan *discoveryv3.DeltaDiscoveryRequest
	send chan *discoveryv3.DeltaDiscoveryResponse
	done chan struct{} // close to end the stream from the server side
}

func (f *fakeServer) DeltaAggregatedResources(s grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]) error {
	fs := &fakeStream{reqs: make(chan *discoveryv3.DeltaDiscoveryRequest, 100), send: make(chan *discoveryv3.DeltaDiscoveryResponse), done: make(chan struct{})}
	f.streams <- fs
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			fs.reqs <- r
		}
	}()
	for {
		select {
		case <-fs.done:
			return errors.New("server closed stream")
		case <-s.Context().Done():
			return nil
		case r := <-fs.send:
			if err := s.Send(r); err != nil {
				return err
			}
		}
	}
}

func startFake(t *testing.T) (*fakeServer, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{streams: make(chan *fakeStream, 10)}
	srv := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("grpc Serve: %v", err)
		}
	})
	return f, lis.Addr().String()
}

func recvReq(t *testing.T, s *fakeStream) *discoveryv3.DeltaDiscoveryRequest {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a request")
		return nil
	}
}

func nextStream(t *testing.T, f *fakeServer) *fakeStream {
	t.Helper()
	select {
	case s := <-f.streams:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a stream")
		return nil
	}
}

func res(t *testing.T, name, version string) *discoveryv3.Resource {
	a, err := anypb.New(wrapperspb.String(name))
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Version: version, Resource: a}
}

// recorder is a Handler that records applied names and rejects names
// listed in reject.
type recorder struct {
	mu     sync.Mutex
	have   map[string]string
	reject string
}

func (r *recorder) Apply(_ string, resources []*discoveryv3.Resource, removed []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range resources {
		if x.GetName() == r.reject {
			return errors.New("bad resource " + x.GetName())
		}
	}
	for _, x := range resources {
		r.have[x.GetName()] = x.GetVersion()
	}
	for _, n := range removed {
		delete(r.have, n)
	}
	return nil
}

func TestClientProtocol(t *testing.T) {
	f, addr := startFake(t)
	h := &recorder{have: map[string]string{}, reject: "bad"}
	c := NewClient(Config{
		Address:        addr,
		Node:           &corev3.Node{Id: "ztunnel~10.0.0.1~zt.istio-system~istio-system.svc.cluster.local"},
		Types:          []string{AddressType, AuthorizationType},
		Handler:        h,
		Log:            slog.New(slog.DiscardHandler),
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
	})
	c.Subscribe(AddressType, "/10.0.0.9")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	s := nextStream(t, f)
	got := []*discoveryv3.DeltaDiscoveryRequest{recvReq(t, s), recvReq(t, s)}
	want := []*discoveryv3.DeltaDiscoveryRequest{
		{Node: &corev3.Node{Id: "ztunnel~10.0.0.1~zt.istio-system~istio-system.svc.cluster.local"}, TypeUrl: AddressType, ResourceNamesSubscribe: []string{"*", "/10.0.0.9"}},
		{TypeUrl: AuthorizationType, ResourceNamesSubscribe: []string{"*"}},
	}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Fatalf("initial requests (-want +got):\n%s", d)
	}

	// ACK.
	s.send <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: AddressType, Nonce: "n1", SystemVersionInfo: "v1", Resources: []*discoveryv3.Resource{res(t, "a", "1"), res(t, "b", "1")}}
	if r := recvReq(t, s); r.GetResponseNonce() != "n1" || r.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n1, got %v", r)
	}
	s.send <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: AuthorizationType, Nonce: "p1"}
	recvReq(t, s)
	select {
	case <-c.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("not synced")
	}

	// NACK keeps the last good state; later responses are still applied.
	s.send <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: AddressType, Nonce: "n2", Resources: []*discoveryv3.Resource{res(t, "bad", "1"), res(t, "c", "1")}}
	if r := recvReq(t, s); r.GetResponseNonce() != "n2" || r.GetErrorDetail().GetMessage() != "bad resource bad" {
		t.Fatalf("want NACK of n2, got %v", r)
	}
	s.send <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: AddressType, Nonce: "n3", Resources: []*discoveryv3.Resource{res(t, "a", "2")}, RemovedResources: []string{"b"}}
	if r := recvReq(t, s); r.GetResponseNonce() != "n3" || r.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n3, got %v", r)
	}
	st := c.Status()
	if at := st.Types[AddressType]; !st.Connected || at.NACKs != 1 || at.ACKs != 2 || at.Nonce != "n3" || at.Resources != 1 {
		t.Fatalf("status: %+v", st)
	}

	// On-demand subscribe and unsubscribe while connected.
	c.Subscribe(AddressType, "/10.0.0.10", "/10.0.0.9")
	if d := cmp.Diff(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: AddressType, ResourceNamesSubscribe: []string{"/10.0.0.10"}}, recvReq(t, s), protocmp.Transform()); d != "" {
		t.Fatalf("subscribe (-want +got):\n%s", d)
	}
	c.Unsubscribe(AddressType, "/10.0.0.9")
	if d := cmp.Diff(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: AddressType, ResourceNamesUnsubscribe: []string{"/10.0.0.9"}}, recvReq(t, s), protocmp.Transform()); d != "" {
		t.Fatalf("unsubscribe (-want +got):\n%s", d)
	}

	// Reconnect resumes with the accepted versions and the subscriptions.
	close(s.done)
	s2 := nextStream(t, f)
	got = []*discoveryv3.DeltaDiscoveryRequest{recvReq(t, s2), recvReq(t, s2)}
	want = []*discoveryv3.DeltaDiscoveryRequest{
		{Node: &corev3.Node{Id: "ztunnel~10.0.0.1~zt.istio-system~istio-system.svc.cluster.local"}, TypeUrl: AddressType, ResourceNamesSubscribe: []string{"*", "/10.0.0.10"}, InitialResourceVersions: map[string]string{"a": "2"}},
		{TypeUrl: AuthorizationType, ResourceNamesSubscribe: []string{"*"}},
	}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Fatalf("resume requests (-want +got):\n%s", d)
	}
	if st := c.Status(); st.Streams != 2 {
		t.Fatalf("streams = %d, want 2", st.Streams)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no address": {Handler: HandlerFunc(func(string, []*discoveryv3.Resource, []string) error { return nil })},
		"no handler": {Address: "x:1"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := NewClient(cfg).Run(context.Background()); err == nil {
				t.Fatal("want error")
			}
		})
	}
}
