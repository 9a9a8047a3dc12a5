package kube

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/istiod-lite/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestPodIndexOnNode(t *testing.T) {
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	pod := func(ns, name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: name + "-sa"}}
	}
	kube := kubefake.NewSimpleClientset(pod("a", "p1", "n1"), pod("b", "p2", "n1"), pod("a", "p3", "n2"), pod("a", "unscheduled", ""))
	w, err := New(Clients{Kube: kube}, model.New(model.Config{}, slog.New(slog.DiscardHandler)), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Pods().HasSynced() {
		t.Error("HasSynced before Run")
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
	if !w.Pods().HasSynced() {
		t.Error("HasSynced false after sync")
	}
	names := func(node string) []string {
		ps, err := w.Pods().OnNode(node)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.Namespace+"/"+p.Name+"@"+p.ServiceAccount)
		}
		slices.Sort(out)
		return out
	}
	if d := cmp.Diff([]string{"a/p1@p1-sa", "b/p2@p2-sa"}, names("n1")); d != "" {
		t.Errorf("n1 (-want +got):\n%s", d)
	}
	if got := names("none"); len(got) != 0 {
		t.Errorf("unknown node: %v", got)
	}
	if err := kube.CoreV1().Pods("a").Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(names("n1")) == 1 })
}
