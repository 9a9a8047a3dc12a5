package nodeagent

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/weftmesh/weft/pkg/netns"
)

// gateZtunnel is a ztunnel whose Add records what the world looked like
// when it was called and then waits to be released, like a ztunnel slow
// to ack.
type gateZtunnel struct {
	net     *fakeNet
	kube    kubernetes.Interface
	ip      string
	release chan struct{}

	mu             sync.Mutex
	called         bool
	rulesAtAdd     bool
	annotatedAtAdd bool
}

func (z *gateZtunnel) Add(ctx context.Context, w workload) error {
	p, err := z.kube.CoreV1().Pods(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
	z.mu.Lock()
	z.called = true
	z.rulesAtAdd = z.net.dump(z.ip) != ""
	z.annotatedAtAdd = err == nil && p.Annotations[AnnotationRedirection] != ""
	z.mu.Unlock()
	select {
	case <-z.release:
		return nil
	case <-ctx.Done():
		return ErrNoZtunnel
	}
}
func (z *gateZtunnel) Del(context.Context, string) {}
func (z *gateZtunnel) Connected() int              { return 1 }

// TestAnnotationOnlyAfterRulesAndAck confirms the order of enrollment: the
// redirect rules are in the pod's namespace before ztunnel is asked, and
// ambient.istio.io/redirection is written only after ztunnel acked, never
// while the ack is outstanding.
func TestAnnotationOnlyAfterRulesAndAck(t *testing.T) {
	h := newHarness(t, namespace("demo", false), runningPod("demo", "web", "uid-web", "10.244.1.5"))
	h.net.running["10.244.1.5"] = true
	gate := &gateZtunnel{net: h.net, kube: h.kube, ip: "10.244.1.5", release: make(chan struct{})}
	h.agent.zt = gate
	h.start()
	if _, err := h.kube.CoreV1().Namespaces().Update(context.Background(), namespace("demo", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("ztunnel asked", func() bool { gate.mu.Lock(); defer gate.mu.Unlock(); return gate.called })
	// The ack is outstanding: however long it takes, no annotation.
	time.Sleep(300 * time.Millisecond)
	if v, ok := h.pod("demo", "web").Annotations[AnnotationRedirection]; ok {
		t.Fatalf("annotation %q written before ztunnel acked", v)
	}
	close(gate.release)
	h.eventually("annotation after ack", func() bool {
		return h.pod("demo", "web").Annotations[AnnotationRedirection] == RedirectionEnabled
	})
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if !gate.rulesAtAdd {
		t.Error("ztunnel was asked before the redirect rules were installed")
	}
	if gate.annotatedAtAdd {
		t.Error("the pod was annotated before ztunnel was asked")
	}
}

// TestStaleSnapshotAckIgnored: a snapshot sent while the pod still had its
// old sandbox acks that sandbox; the pod's new sandbox, captured meanwhile,
// stays unacked (and so unannotated) until ztunnel acks it.
func TestStaleSnapshotAckIgnored(t *testing.T) {
	h := newHarness(t)
	oldNS, err := h.net.handle("10.244.1.5")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = oldNS.Close() }()
	newNS, err := h.net.handle("10.244.1.5")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = newNS.Close() }()
	old := &podState{uid: "uid-web", name: "web", namespace: "demo", ns: oldNS}
	sent := old.workload() // in the snapshot
	cur := &podState{uid: "uid-web", name: "web", namespace: "demo", ns: newNS}
	h.agent.pods["uid-web"] = cur // a new sandbox replaced it
	h.agent.onSnapshotAck(sent)
	if h.agent.isAcked(cur) {
		t.Fatal("the new sandbox counts as acked by the old sandbox's snapshot ack")
	}
	h.agent.onSnapshotAck(cur.workload())
	if !h.agent.isAcked(cur) {
		t.Fatal("the new sandbox's own ack was not recorded")
	}
}

// TestReconcileDoesNotAnnotateReplacedState: reconcile reads the held
// state before taking the pod's lock; if the pod got a new, not yet acked
// sandbox meanwhile, reconcile must not annotate it.
func TestReconcileDoesNotAnnotateReplacedState(t *testing.T) {
	pod := runningPod("demo", "web", "uid-web", "10.244.1.5")
	h := newHarness(t, namespace("demo", true), pod)
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	nss := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = pods.Add(pod)
	_ = nss.Add(namespace("demo", true))
	h.agent.podLister, h.agent.nsLister = listersv1.NewPodLister(pods), listersv1.NewNamespaceLister(nss)

	handles := make([]*netns.NetNS, 2)
	for i := range handles {
		ns, err := h.net.handle("10.244.1.5")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ns.Close() }()
		handles[i] = ns
	}
	held := &podState{uid: "uid-web", name: "web", namespace: "demo", ns: handles[0], acked: true}
	h.agent.pods["uid-web"] = held

	// Hold the pod's lock as an enroll of a new sandbox would, start the
	// reconcile (it sees the acked state and waits for the lock), then
	// replace the state with the new, unacked sandbox.
	unlock := h.agent.podLocks.lock("uid-web")
	done := make(chan error, 1)
	go func() { done <- h.agent.reconcile(context.Background(), "demo/web") }()
	time.Sleep(100 * time.Millisecond)
	h.agent.mu.Lock()
	h.agent.pods["uid-web"] = &podState{uid: "uid-web", name: "web", namespace: "demo", ns: handles[1]}
	h.agent.mu.Unlock()
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if v, ok := h.pod("demo", "web").Annotations[AnnotationRedirection]; ok {
		t.Fatalf("annotated %q for a sandbox ztunnel has not acked", v)
	}
}

var _ ztunnel = (*gateZtunnel)(nil)
