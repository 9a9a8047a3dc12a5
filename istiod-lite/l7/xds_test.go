package l7

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
	"github.com/weftmesh/weft/istiod-lite/xds"
	"github.com/weftmesh/weft/pkg/api/l7api"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
)

// waypointState is a minimal waypoint-side consumer: it decodes every
// resource and keeps it by type and name.
type waypointState struct {
	mu   sync.Mutex
	have map[string]proto.Message
}

func (s *waypointState) Apply(typeURL string, rs []*discoveryv3.Resource, removed []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		m, err := r.GetResource().UnmarshalNew()
		if err != nil {
			return err
		}
		s.have[typeURL+" "+r.Name] = m
	}
	for _, n := range removed {
		delete(s.have, typeURL+" "+n)
	}
	return nil
}

func (s *waypointState) get(typeURL, name string) proto.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.have[typeURL+" "+name]
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServedOverDeltaXDS runs the xDS server over the model and the
// Controller (through a Mux) and checks that a pkg/xds client subscribed
// to the three L7 types receives them and their updates and removals.
func TestServedOverDeltaXDS(t *testing.T) {
	m := model.New(model.Config{}, slog.New(slog.DiscardHandler))
	c := New(Config{}, nil, nil)
	mux := xds.NewMux().Handle(m, xds.Types...).Handle(c, Types...)
	srv := xds.New(mux, xds.Config{Types: mux.Types(), Debounce: time.Millisecond})

	// State before the client connects.
	c.UpsertService(service("svc", corev1.ServicePort{Name: "http", Port: 80}))
	c.UpsertHTTPRoute(httpRoute(t, `{rules: [{backendRefs: [{name: v1, port: 80}]}]}`, nil))
	c.UpsertAuthorizationPolicy(authzPolicy(t, "allow-get", `{"targetRefs":[{"kind":"Service","name":"svc"}],"rules":[{"to":[{"operation":{"methods":["GET"]}}]}]}`))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(xds.ServerOptions()...)
	srv.Register(g)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			t.Errorf("xds Run: %v", err)
		}
	}()
	defer func() {
		cancel()
		g.Stop()
		wg.Wait()
	}()

	st := &waypointState{have: map[string]proto.Message{}}
	cl := xdsclient.NewClient(xdsclient.Config{Address: lis.Addr().String(), Types: Types, Handler: st, Log: slog.New(slog.DiscardHandler), InitialBackoff: 10 * time.Millisecond})
	cdone := make(chan error, 1)
	go func() { cdone <- cl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-cdone; err != nil {
			t.Errorf("client Run: %v", err)
		}
	}()
	select {
	case <-cl.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("client never synced")
	}

	const host = "svc.demo.svc.cluster.local"
	rc, _ := st.get(l7api.RouteConfigType, host).(*l7api.RouteConfig)
	if len(rc.GetRoutes()) != 1 || rc.GetRoutes()[0].GetName() != "HTTPRoute/demo/r/0" {
		t.Fatalf("initial RouteConfig = %v", rc)
	}
	if p, _ := st.get(l7api.L7PolicyType, "demo/allow-get").(*l7api.L7Policy); p.GetName() != "allow-get" {
		t.Fatalf("initial L7Policy = %v", p)
	}

	// Updates: a new rule, a DestinationRule, a removed policy.
	c.UpsertHTTPRoute(httpRoute(t, `{rules: [{matches: [{headers: [{name: x-version, value: v2}]}], backendRefs: [{name: v2, port: 80}]}, {backendRefs: [{name: v1, port: 80}]}]}`, nil))
	c.UpsertDestinationRule(destinationRule(t, "dr", `{"host":"svc","trafficPolicy":{"connectionPool":{"http":{"http2MaxRequests":10}}}}`))
	c.DeleteAuthorizationPolicy("demo", "allow-get")
	waitFor(t, "updated RouteConfig", func() bool {
		rc, _ := st.get(l7api.RouteConfigType, host).(*l7api.RouteConfig)
		return len(rc.GetRoutes()) == 2
	})
	waitFor(t, "TrafficPolicy", func() bool {
		tp, _ := st.get(l7api.TrafficPolicyType, host).(*l7api.TrafficPolicy)
		return tp.GetConnectionPool().GetMaxRequests() == 10
	})
	waitFor(t, "L7Policy removal", func() bool { return st.get(l7api.L7PolicyType, "demo/allow-get") == nil })
	if s := cl.Status(); s.Types[l7api.RouteConfigType].NACKs != 0 {
		t.Errorf("NACKs: %+v", s)
	}
}
