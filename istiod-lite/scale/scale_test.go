package scale

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/weftmesh/weft/istiod-lite/kube"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/istiod-lite/xds"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// TestRunInProcess exercises the benchmark end to end against an
// in-process istiod-lite (informers on a fake clientset, model, plaintext
// xDS). Its timings say nothing about a real API server.
func TestRunInProcess(t *testing.T) {
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	kc := kubefake.NewSimpleClientset()
	m := model.New(model.Config{RequireRedirection: true}, slog.New(slog.DiscardHandler))
	w, err := kube.New(kube.Clients{Kube: kc}, m, kube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Kube: kc, Namespaces: 5, Pods: 200, Services: 20, Clients: 3, Changes: 20, Gap: time.Millisecond}
	// Create before the informers watch: the fake watch channel holds
	// only 100 events.
	if _, err := Create(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	srv := xds.New(m, xds.Config{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(xds.ServerOptions()...)
	srv.Register(g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	go func() { done <- w.Run(ctx) }()
	go func() { done <- srv.Run(ctx) }()
	go func() { done <- g.Serve(lis) }()
	defer func() {
		cancel()
		g.Stop()
		for range 3 {
			if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				t.Errorf("watcher, xDS server or gRPC serve: %v", err)
			}
		}
	}()

	cfg.XDSAddress = lis.Addr().String()
	rep, err := Measure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	Cleanup(ctx, cfg)
	t.Log(rep)
	if rep.Samples != 20 || rep.P50 <= 0 || rep.Max < rep.P99 || rep.Removal <= 0 {
		t.Errorf("implausible report %+v", rep)
	}
	if l, _ := kc.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("cleanup left %d namespaces", len(l.Items))
	}
}

func TestMeasureProcess(t *testing.T) {
	p, err := MeasureProcess(os.Getpid())
	if err != nil {
		t.Skip(err)
	}
	if p.RSS <= 0 || p.AnonRSS <= 0 || p.AnonRSS > p.RSS {
		t.Errorf("implausible %+v", p)
	}
}
