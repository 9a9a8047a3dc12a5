package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type harness struct {
	m       *model.Model
	srv     *Server
	metrics *Metrics
	conn    *grpc.ClientConn
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	m := model.New(model.Config{}, slog.New(slog.DiscardHandler))
	m.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{model.LabelDataplaneMode: model.DataplaneModeAmbient}}})
	for i := range 3 {
		m.UpsertPod(pod(i, true))
	}
	reg := prometheus.NewRegistry()
	met, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(m, Config{Debounce: time.Millisecond, MaxDebounce: 5 * time.Millisecond, Metrics: met})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close() // teardown; the tests checked their calls
		g.Stop()
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("server Run: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("grpc Serve: %v", err)
		}
	})
	return &harness{m: m, srv: srv, metrics: met, conn: cc}
}

func pod(i int, ready bool) *corev1.Pod {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns"},
		Spec:       corev1.PodSpec{NodeName: "n1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

func uid(i int) string { return fmt.Sprintf("Kubernetes//Pod/ns/p%d", i) }

type stream struct {
	t      *testing.T
	s      grpc.BidiStreamingClient[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]
	cancel context.CancelFunc
}

func (h *harness) open(t *testing.T) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return &stream{t: t, s: s, cancel: cancel}
}

func (s *stream) send(r *discoveryv3.DeltaDiscoveryRequest) {
	s.t.Helper()
	if err := s.s.Send(r); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stream) recv() *discoveryv3.DeltaDiscoveryResponse {
	s.t.Helper()
	ch := make(chan *discoveryv3.DeltaDiscoveryResponse, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := s.s.Recv()
		if err != nil {
			errc <- err
			return
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		return r
	case err := <-errc:
		s.t.Fatalf("recv: %v", err)
	case <-time.After(5 * time.Second):
		s.t.Fatal("timed out waiting for a response")
	}
	return nil
}

// expectNothing checks no response arrives for a short while; it
// consumes the stream, so call it last.
func (s *stream) expectNothing() {
	s.t.Helper()
	ch := make(chan *discoveryv3.DeltaDiscoveryResponse, 1)
	go func() {
		if r, err := s.s.Recv(); err == nil {
			ch <- r
		}
	}()
	select {
	case r := <-ch:
		s.t.Fatalf("unexpected response: %v", r)
	case <-time.After(200 * time.Millisecond):
	}
}

func (s *stream) ack(r *discoveryv3.DeltaDiscoveryResponse) {
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.TypeUrl, ResponseNonce: r.Nonce})
}

func names(r *discoveryv3.DeltaDiscoveryResponse) []string {
	var out []string
	for _, x := range r.Resources {
		out = append(out, x.Name)
	}
	slices.Sort(out)
	return out
}

func TestWildcardSubscribeAckChangeRemove(t *testing.T) {
	h := newHarness(t)
	s := h.open(t)
	s.send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "ztunnel~10.0.0.1~zt.ns~ns.svc.cluster.local"}, TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}})
	r := s.recv()
	if got, want := names(r), []string{uid(0), uid(1), uid(2)}; !slices.Equal(got, want) {
		t.Fatalf("initial = %v, want %v", got, want)
	}
	if r.Resources[0].Resource.TypeUrl != model.AddressType {
		t.Errorf("type url %q", r.Resources[0].Resource.TypeUrl)
	}
	s.ack(r)
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AuthorizationType, ResourceNamesSubscribe: []string{"*"}})
	if r := s.recv(); r.TypeUrl != model.AuthorizationType || len(r.Resources) != 0 {
		t.Fatalf("want an empty initial authorization response, got %v", r)
	} else {
		s.ack(r)
	}

	h.m.UpsertPod(pod(1, false))
	r = s.recv()
	if got := names(r); !slices.Equal(got, []string{uid(1)}) {
		t.Fatalf("update = %v", got)
	}
	var a workloadapi.Address
	if err := r.Resources[0].Resource.UnmarshalTo(&a); err != nil || a.GetWorkload().GetStatus() != workloadapi.WorkloadStatus_UNHEALTHY {
		t.Fatalf("update content %v %v", &a, err)
	}
	s.ack(r)

	h.m.DeletePod("ns", "p2")
	r = s.recv()
	if len(r.Resources) != 0 || !slices.Equal(r.RemovedResources, []string{uid(2)}) {
		t.Fatalf("removal = %v", r)
	}
	s.ack(r)
	waitFor(t, func() bool {
		cs := h.srv.Clients(false)
		return len(cs) == 1 && cs[0].Types[model.AddressType].AckNonce == r.Nonce && cs[0].Node != ""
	})
	waitFor(t, func() bool {
		return testutil.CollectAndCount(h.metrics.convergence) == 1 && h.srv.LastConvergence() > 0
	})
}

func TestNACKIsCountedAndPushesContinue(t *testing.T) {
	h := newHarness(t)
	s := h.open(t)
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}})
	r := s.recv()
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResponseNonce: r.Nonce, ErrorDetail: &statuspb.Status{Code: 3, Message: "bad workload"}})
	waitFor(t, func() bool { return testutil.ToFloat64(h.metrics.nacks.WithLabelValues(model.AddressType)) == 1 })
	if cs := h.srv.Clients(false); cs[0].Types[model.AddressType].LastNACK != "bad workload" {
		t.Errorf("status %+v", cs)
	}
	h.m.UpsertPod(pod(7, true))
	if got := names(s.recv()); !slices.Equal(got, []string{uid(7)}) {
		t.Fatalf("push after NACK = %v", got)
	}
}

func TestOnDemandByAliasAndUnsubscribe(t *testing.T) {
	h := newHarness(t)
	s := h.open(t)
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"/10.0.0.2", "/10.0.0.9"}})
	r := s.recv()
	if got := names(r); !slices.Equal(got, []string{uid(1)}) || !slices.Equal(r.RemovedResources, []string{"/10.0.0.9"}) {
		t.Fatalf("on-demand = %v removed %v", got, r.RemovedResources)
	}
	if !slices.Contains(r.Resources[0].Aliases, "/10.0.0.2") {
		t.Errorf("aliases %v", r.Resources[0].Aliases)
	}
	s.ack(r)
	// Unwatched changes are not sent; a pod appearing at a watched address is.
	h.m.UpsertPod(pod(0, false))
	h.m.UpsertPod(pod(8, true)) // 10.0.0.9
	if got := names(s.recv()); !slices.Equal(got, []string{uid(8)}) {
		t.Fatalf("got %v, want only p8", got)
	}
	// Subscribe by name too.
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{uid(2)}})
	if got := names(s.recv()); !slices.Equal(got, []string{uid(2)}) {
		t.Fatalf("by name = %v", got)
	}
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesUnsubscribe: []string{"/10.0.0.2"}})
	waitFor(t, func() bool {
		return !slices.Contains(h.srv.Clients(false)[0].Types[model.AddressType].Names, "/10.0.0.2")
	})
	h.m.UpsertPod(pod(1, false))
	s.expectNothing()
}

func TestReconnectWithInitialVersions(t *testing.T) {
	h := newHarness(t)
	s := h.open(t)
	s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}})
	r := s.recv()
	s.ack(r)
	versions := map[string]string{}
	for _, x := range r.Resources {
		versions[x.Name] = x.Version
	}
	versions["Kubernetes//Pod/ns/gone"] = "old"
	s.cancel()

	h.m.UpsertPod(pod(0, false)) // changed while disconnected
	s2 := h.open(t)
	s2.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}, InitialResourceVersions: versions})
	r = s2.recv()
	if got := names(r); !slices.Equal(got, []string{uid(0)}) || !slices.Equal(r.RemovedResources, []string{"Kubernetes//Pod/ns/gone"}) {
		t.Fatalf("resume = %v removed %v", got, r.RemovedResources)
	}
}

func TestSlowClientDoesNotStallOthers(t *testing.T) {
	h := newHarness(t)
	slow := h.open(t)
	slow.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}})
	fast := h.open(t)
	fast.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}})
	fast.ack(fast.recv())
	// Enough churn to fill the slow client's flow-control window many times.
	for round := range 4 {
		for i := 10; i < 1500; i++ {
			h.m.UpsertPod(pod(i, round%2 == 0))
		}
		got := 0
		for got < 1490 {
			r := fast.recv()
			got += len(r.Resources)
			fast.ack(r)
		}
	}
	h.m.UpsertPod(pod(5000, true))
	if got := names(fast.recv()); !slices.Equal(got, []string{uid(5000)}) {
		t.Fatalf("got %v", got)
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
