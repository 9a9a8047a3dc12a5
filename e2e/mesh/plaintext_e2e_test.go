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

// assertNoPlaintext watches the given enrolled pods' addresses from now
// until the test (or subtest) ends, and then fails it if any TCP payload
// passed between them in plaintext (on a port other than 15008). Call it
// after the pods are enrolled; cleanups run in reverse, so the check runs
// before a cleanup registered earlier unenrolls them.
func (e *meshEnv) assertNoPlaintext(ctx context.Context, t *testing.T, pods ...corev1.Pod) {
	t.Helper()
	d := e.plaintext(ctx, t)
	addrs := podAddrs(t, pods)
	if err := d.Watch(ctx, addrs...); err != nil {
		t.Fatal(err)
	}
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
		if err := d.Unwatch(ctx, addrs...); err != nil {
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
