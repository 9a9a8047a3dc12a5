//go:build e2e

package mesh_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/e2e/lab"
)

// detector is the suite's plaintext detector, installed on first use.
var detector struct {
	once sync.Once
	d    *lab.PlaintextDetector
	err  error

	mu sync.Mutex
	// refs counts the watchers of each address, so that one watcher's
	// end does not stop another's watch of the same pod.
	refs map[netip.Addr]int
	// namespaces holds the watch labelNamespace started for each
	// enrolled namespace.
	namespaces map[string]nsWatch
}

// nsWatch is the plaintext watch of one enrolled namespace's pods.
type nsWatch struct {
	addrs  []netip.Addr
	before uint64
}

// plaintext returns the suite's detector.
func (e *meshEnv) plaintext(ctx context.Context, t *testing.T) *lab.PlaintextDetector {
	t.Helper()
	detector.once.Do(func() { detector.d, detector.err = e.c.NewPlaintextDetector(ctx) })
	if detector.err != nil {
		t.Fatalf("plaintext detector: %v", detector.err)
	}
	return detector.d
}

func podAddrs(t *testing.T, pods []corev1.Pod) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, p := range pods {
		a, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil {
			t.Fatalf("pod %s/%s IP %q: %v", p.Namespace, p.Name, p.Status.PodIP, err)
		}
		out = append(out, a)
	}
	return out
}

// watch adds addrs to the detector's watched set.
func (e *meshEnv) watch(ctx context.Context, t *testing.T, addrs []netip.Addr) {
	t.Helper()
	d := e.plaintext(ctx, t)
	detector.mu.Lock()
	defer detector.mu.Unlock()
	if detector.refs == nil {
		detector.refs = map[netip.Addr]int{}
	}
	var fresh []netip.Addr
	for _, a := range addrs {
		if detector.refs[a] == 0 {
			fresh = append(fresh, a)
		}
		detector.refs[a]++
	}
	if len(fresh) > 0 {
		if err := d.Watch(ctx, fresh...); err != nil {
			t.Fatal(err)
		}
	}
}

// unwatch ends one watch of addrs; an address leaves the detector's set
// when its last watcher is done.
func (e *meshEnv) unwatch(ctx context.Context, addrs []netip.Addr) error {
	detector.mu.Lock()
	defer detector.mu.Unlock()
	var gone []netip.Addr
	for _, a := range addrs {
		if detector.refs[a]--; detector.refs[a] <= 0 {
			delete(detector.refs, a)
			gone = append(gone, a)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return detector.d.Unwatch(ctx, gone...)
}

// watchNamespace starts the plaintext watch of an enrolled namespace's
// pods: labelNamespace calls it, so every test that enrolls a namespace
// asserts that no TCP payload passes between its pods outside HBONE for
// as long as the namespace stays enrolled.
func (e *meshEnv) watchNamespace(ctx context.Context, t *testing.T, ns string, pods []corev1.Pod) {
	t.Helper()
	detector.mu.Lock()
	_, watching := detector.namespaces[ns]
	detector.mu.Unlock()
	if watching || len(pods) < 2 {
		return
	}
	addrs := podAddrs(t, pods)
	e.watch(ctx, t, addrs)
	before, err := e.plaintext(ctx, t).Leaked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	detector.mu.Lock()
	if detector.namespaces == nil {
		detector.namespaces = map[string]nsWatch{}
	}
	detector.namespaces[ns] = nsWatch{addrs: addrs, before: before}
	detector.mu.Unlock()
	t.Cleanup(func() { e.endNamespaceWatch(context.Background(), t, ns) })
}

// endNamespaceWatch checks and ends ns's watch, if one is running:
// labelNamespace calls it before unenrolling, and a cleanup calls it when
// the test leaves the namespace enrolled.
func (e *meshEnv) endNamespaceWatch(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	detector.mu.Lock()
	w, ok := detector.namespaces[ns]
	delete(detector.namespaces, ns)
	detector.mu.Unlock()
	if !ok {
		return
	}
	after, err := detector.d.Leaked(ctx)
	switch {
	case err != nil:
		t.Errorf("plaintext detector: %v", err)
	case after != w.before:
		flows, _ := detector.d.Flows(ctx)
		t.Errorf("plaintext detector: %d TCP payload packets between pods of enrolled namespace %s %v outside HBONE; flows seen in this suite: %q", after-w.before, ns, w.addrs, flows)
	}
	if err := e.unwatch(ctx, w.addrs); err != nil {
		t.Errorf("plaintext detector: %v", err)
	}
}

// assertNoPlaintext watches the given enrolled pods' addresses from now
// until the test (or subtest) ends, and then fails it if any TCP payload
// passed between them in plaintext (on a port other than 15008). Call it
// after the pods are enrolled; cleanups run in reverse, so the check runs
// before a cleanup registered earlier unenrolls them.
func (e *meshEnv) assertNoPlaintext(ctx context.Context, t *testing.T, pods ...corev1.Pod) {
	t.Helper()
	d := e.plaintext(ctx, t)
	addrs := podAddrs(t, pods)
	e.watch(ctx, t, addrs)
	before, err := d.Leaked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		after, err := d.Leaked(ctx)
		if err != nil {
			t.Errorf("plaintext detector: %v", err)
		} else if after != before {
			flows, _ := d.Flows(ctx)
			t.Errorf("plaintext detector: %d TCP payload packets between enrolled pods %v outside HBONE; flows seen in this suite: %q", after-before, addrs, flows)
		}
		if err := e.unwatch(ctx, addrs); err != nil {
			t.Errorf("plaintext detector: %v", err)
		}
	})
}

// TestPlaintextDetector proves the detector both ways on the same pods:
// unenrolled, a cross-node HTTP call is counted as plaintext; enrolled,
// the same calls (cross-node and same-node) leave the counter at zero.
func TestPlaintextDetector(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	pods := []corev1.Pod{client, server}
	for _, p := range e.readyPods(ctx, t, "demo", "app=echo", 2) {
		if p.Name != server.Name {
			pods = append(pods, p)
		}
	}
	d := e.plaintext(ctx, t)

	t.Run("unenrolled traffic is counted", func(t *testing.T) {
		addrs := podAddrs(t, pods)
		if err := d.Watch(ctx, addrs...); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = d.Unwatch(ctx, addrs...) }()
		before, err := d.Leaked(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustCall(ctx, t, e, client, "--url", httpURL(server, "/plaintext"))
		after, err := d.Leaked(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after <= before {
			t.Fatalf("a plaintext call between unenrolled pods was not counted (%d -> %d): the detector cannot see leaks", before, after)
		}
		t.Logf("plaintext call counted: %d packets", after-before)
	})

	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	t.Run("enrolled traffic is not", func(t *testing.T) {
		e.assertNoPlaintext(ctx, t, pods...)
		for _, p := range pods[1:] {
			for range 3 {
				mustCall(ctx, t, e, client, "--url", httpURL(p, "/mesh"))
			}
		}
	})
}
