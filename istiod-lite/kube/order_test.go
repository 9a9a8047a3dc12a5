package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/istiod-lite/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// recordingSink is the model with a log of the kinds handed to it.
type recordingSink struct {
	*model.Model
	mu    sync.Mutex
	kinds []string
}

func (r *recordingSink) note(kind string) {
	r.mu.Lock()
	r.kinds = append(r.kinds, kind)
	r.mu.Unlock()
}

func (r *recordingSink) UpsertNamespace(n *corev1.Namespace) {
	r.note("namespace")
	r.Model.UpsertNamespace(n)
}
func (r *recordingSink) UpsertService(s *corev1.Service) { r.note("service"); r.Model.UpsertService(s) }
func (r *recordingSink) UpsertCompactPod(p *model.Pod)   { r.note("pod"); r.Model.UpsertCompactPod(p) }

func TestPodsDeliveredAfterWhatTheyDependOn(t *testing.T) {
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	var objs []runtime.Object
	for i := range 3 {
		ns := fmt.Sprintf("ns-%d", i)
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{model.LabelDataplaneMode: model.DataplaneModeAmbient}}})
		for j := range 20 {
			objs = append(objs, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", j), Namespace: ns, Labels: map[string]string{"app": fmt.Sprintf("a-%d", j%5)}},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.0.%d.%d", i, j+1)},
			})
		}
		for j := range 5 {
			objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", j), Namespace: ns},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("a-%d", j)}, ClusterIPs: []string{fmt.Sprintf("10.96.%d.%d", i, j+1)}, Ports: []corev1.ServicePort{{Port: 80}}}})
		}
	}
	sink := &recordingSink{Model: model.New(model.Config{}, slog.New(slog.DiscardHandler))}
	w, err := New(Clients{Kube: kubefake.NewSimpleClientset(objs...)}, sink, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher Run: %v", err)
		}
	}()
	select {
	case <-w.SyncedAt():
	case <-time.After(10 * time.Second):
		t.Fatal("not synced")
	}
	sink.mu.Lock()
	kinds := append([]string(nil), sink.kinds...)
	sink.mu.Unlock()
	firstPod, counts := -1, map[string]int{}
	for i, k := range kinds {
		counts[k]++
		if k == "pod" && firstPod < 0 {
			firstPod = i
		}
		if k != "pod" && firstPod >= 0 {
			t.Fatalf("%s delivered after the first pod (position %d of %v)", k, i, kinds)
		}
	}
	if counts["pod"] != 60 || counts["service"] != 15 || counts["namespace"] != 3 {
		t.Errorf("delivered %v", counts)
	}
	if r := sink.Sizes()["addresses"]; r != 60+15 {
		t.Errorf("addresses = %d, want 75", r)
	}
}

func TestRunStopsWithPodsHeld(t *testing.T) {
	// A prerequisite that never syncs: the gate stays shut until Run ends,
	// and Run must still return.
	o := newSyncOrder()
	never := make(chan struct{})
	o.prereqs = append(o.prereqs, named{"never", doneChan(never)})
	w := &Watcher{log: slog.New(slog.DiscardHandler), startedAt: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { o.run(ctx, w); close(finished) }()
	held := make(chan struct{})
	go func() {
		gatedHandler{open: o.open, h: nopHandler{}}.OnAdd(nil, true)
		close(held)
	}()
	select {
	case <-held:
		t.Fatal("handler ran before the gate opened")
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	for _, c := range []chan struct{}{finished, held} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal("gate not opened when the context ended")
		}
	}
}

type doneChan chan struct{}

func (d doneChan) Name() string          { return "test" }
func (d doneChan) Done() <-chan struct{} { return d }

type nopHandler struct{}

func (nopHandler) OnAdd(any, bool)   {}
func (nopHandler) OnUpdate(any, any) {}
func (nopHandler) OnDelete(any)      {}
