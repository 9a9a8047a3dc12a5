//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// heldConn is a TCP connection to an echo server's port 9000 held open by
// a shell in the client pod's network namespace.
type heldConn struct {
	trigger string
	done    chan string
}

// holdConn opens the connection and exchanges one line; resume sends a
// second line on the same connection and returns both echoes.
func (e *meshEnv) holdConn(ctx context.Context, t *testing.T, from, to corev1.Pod) *heldConn {
	t.Helper()
	h := &heldConn{trigger: filepath.Join(t.TempDir(), "resume"), done: make(chan string, 1)}
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/9000 || exit 1
read -t 5 -u 3 hello || exit 2
echo first >&3; read -t 5 -u 3 a || exit 3
echo established > %[2]s.up
while [ ! -f %[2]s ]; do sleep 0.1; done
echo second >&3; read -t 5 -u 3 b || exit 4
echo "$a|$b"`, to.Status.PodIP, h.trigger)
	go func() {
		out, err := e.exec(ctx, from.Namespace, from.Name, "bash", "-c", script)
		if err != nil {
			out = err.Error()
		}
		h.done <- strings.TrimSpace(out)
	}()
	eventually(ctx, t, 10*time.Second, "held connection established", func() error {
		if _, err := os.Stat(h.trigger + ".up"); err != nil {
			return err
		}
		return nil
	})
	return h
}

func (h *heldConn) resume(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(h.trigger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-h.done:
		if got != "first|second" {
			t.Errorf("held connection: %q, want both lines echoed", got)
		}
	case <-time.After(20 * time.Second):
		t.Error("held connection: no answer")
	}
}

// TestIstiodDown: with istiod-lite scaled to zero, existing connections
// and new ones keep working on ztunnel's cached config and certificates.
func TestIstiodDown(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	held := e.holdConn(ctx, t, client, server)

	if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "scale", "deployment/istiod-lite", "--replicas=0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "scale", "deployment/istiod-lite", "--replicas=2"); err != nil {
			t.Error(err)
		}
		if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", "deployment/istiod-lite", "--timeout=2m"); err != nil {
			t.Error(err)
		}
		e.waitXDSConnected(ctx, t)
	})
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := e.cs.CoreV1().Pods("weft-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod-lite"})
		return err == nil && len(l.Items) == 0, nil
	})
	if err != nil {
		t.Fatalf("istiod-lite pods not gone: %v", err)
	}
	if !e.viaHBONE(ctx, t, client, server, "spiffe://cluster.local/ns/demo/sa/client") {
		t.Error("a new connection without istiod-lite was not counted as mTLS from the client")
	}
	held.resume(t)
}

// TestZtunnelRollingRestart: a rolling restart of the ztunnel DaemonSet
// (maxSurge 1) lets traffic resume, and under STRICT every call that
// succeeds meanwhile was mTLS (the server's ztunnel refuses plaintext).
func TestZtunnelRollingRestart(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec:
  mtls: {mode: STRICT}
`)
	args := []string{"--url", httpURL(server, "/restart")}
	e.expect(ctx, t, "STRICT: mesh client allowed", true, client, args...)

	e.rollZtunnels(ctx, t, client, args...)
	e.expect(ctx, t, "traffic resumes after the restart", true, client, args...)
	if !e.viaHBONE(ctx, t, client, server, "spiffe://cluster.local/ns/demo/sa/client") {
		t.Error("after the restart a call was not counted as mTLS from the client")
	}
}

// rollZtunnels restarts the ztunnel DaemonSet and waits for the rollout,
// calling from client with args every 200 ms meanwhile and logging how
// many calls passed.
func (e *meshEnv) rollZtunnels(ctx context.Context, t *testing.T, client corev1.Pod, args ...string) {
	t.Helper()
	start := time.Now()
	if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "restart", "daemonset/ztunnel"); err != nil {
		t.Fatal(err)
	}
	rolled := make(chan error, 1)
	go func() {
		_, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", "daemonset/ztunnel", "--timeout=3m")
		rolled <- err
	}()
	var ok, failed int
	var rollErr error
loop:
	for {
		select {
		case rollErr = <-rolled:
			break loop
		default:
		}
		if _, err := e.call(ctx, client, args...); err != nil {
			failed++
		} else {
			ok++
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rollErr != nil {
		t.Fatalf("ztunnel rollout: %v", rollErr)
	}
	t.Logf("ztunnel rolling restart took %s; calls meanwhile: %d ok, %d failed", time.Since(start).Round(100*time.Millisecond), ok, failed)
}

// rulesIn lists the iptables rules and ip rules in a pod's network
// namespace, without counters and comments.
func (e *meshEnv) rulesIn(ctx context.Context, t *testing.T, p corev1.Pod) string {
	t.Helper()
	out, err := e.exec(ctx, p.Namespace, p.Name, "bash", "-c", "iptables-save; ip rule; ip route show table all")
	if err != nil {
		t.Fatal(err)
	}
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		keep = append(keep, counters.ReplaceAllString(l, ""))
	}
	return strings.Join(keep, "\n")
}

// TestCNIAgentRestart: restarting the node agent neither duplicates nor
// loses an enrolled pod's rules, and the pod stays in the mesh.
func TestCNIAgentRestart(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	before := e.rulesIn(ctx, t, client)
	if !strings.Contains(before, "--to-ports 15001") {
		t.Fatalf("no redirect to 15001 in the enrolled client's netns:\n%s", before)
	}
	for _, a := range e.readyPods(ctx, t, "weft-system", "app=weft-cni-agent", 2) {
		if a.Spec.NodeName == client.Spec.NodeName {
			if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "delete", "pod", a.Name, "--wait=true"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", "daemonset/weft-cni-agent", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	e.readyPods(ctx, t, "weft-system", "app=weft-cni-agent", 2)
	time.Sleep(2 * time.Second) // the new agent's reconcile
	if after := e.rulesIn(ctx, t, client); after != before {
		t.Errorf("rules changed across an agent restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !e.viaHBONE(ctx, t, client, server, "spiffe://cluster.local/ns/demo/sa/client") {
		t.Error("after the agent restart a call was not counted as mTLS from the client")
	}
}
