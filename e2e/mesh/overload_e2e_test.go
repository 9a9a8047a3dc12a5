//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/probe"
)

// capsPerPod is the per-pod cap the overload test lowers ztunnel to.
const capsPerPod = 20

// setZtunnelEnv sets (value "") or removes (value "-") an environment
// variable of the ztunnel DaemonSet and waits for the rollout.
func (e *meshEnv) setZtunnelEnv(ctx context.Context, t *testing.T, name, value string) {
	t.Helper()
	arg := name + "=" + value
	if value == "-" {
		arg = name + "-"
	}
	if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "set", "env", "daemonset/ztunnel", arg); err != nil {
		t.Fatalf("set ztunnel env %s: %v", arg, err)
	}
	if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", "daemonset/ztunnel", "--timeout=3m"); err != nil {
		t.Fatalf("ztunnel rollout after %s: %v", arg, err)
	}
}

// TestOverloadConnectionCaps lowers ztunnel's per-pod cap through the
// DaemonSet's environment (MAX_CONNECTIONS_PER_POD=20) and opens 40 long
// connections at once from the demo client: exactly 20 are carried with
// their bytes intact and exactly 20 are refused (reset before the
// server's greeting), counted as outbound/pod_limit on the client node's
// ztunnel and logged rate-limited, not once each. Meanwhile another
// enrolled pod on the same node is served as usual, and the client
// node's ztunnel memory stays bounded. The cap is restored afterwards.
func TestOverloadConnectionCaps(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	probeBin := e.probeBin(t)
	client, _ := e.clientAndServer(ctx, t)
	node := client.Spec.NodeName
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	neighbour := e.startPod(ctx, t, "demo", "caps-neighbour", "caps-neighbour", node, nil)
	svc, err := e.cs.CoreV1().Services("demo").Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "9000")

	e.setZtunnelEnv(ctx, t, "MAX_CONNECTIONS_PER_POD", strconv.Itoa(capsPerPod))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		e.setZtunnelEnv(ctx, t, "MAX_CONNECTIONS_PER_POD", "-")
	})
	small := []string{"--count", "10", "--concurrency", "5", "--max-size", "65536", "--pace", "0", "--timeout", "10s"}
	eventually(ctx, t, 2*time.Minute, "traffic through the restarted ztunnels", func() error {
		for _, from := range []string{client.Name, neighbour.Name} {
			pod := client
			if from == neighbour.Name {
				pod = neighbour
			}
			r, err := e.streamErr(ctx, probeBin, pod, []string{vip}, small...)
			if err != nil {
				return err
			}
			if r.Outcomes[probe.OK] != r.Conns {
				return fmt.Errorf("from %s: outcomes %v", from, r.Outcomes)
			}
		}
		return nil
	})
	echoes := e.readyPods(ctx, t, "demo", "app=echo", 2)
	e.assertNoPlaintext(ctx, t, append([]corev1.Pod{client, neighbour}, echoes...)...)
	z := e.ztunnelOn(ctx, t, node)
	refused := func() float64 {
		return counter(e.ztunnelGet(ctx, t, z, 15020, "/metrics"), "weft_ztunnel_connections_refused_total",
			`direction="outbound"`, `reason="pod_limit"`)
	}
	before := refused()
	memBefore := e.usageOf(ctx, t, z, "ztunnel", 15000)

	// 40 connections at once, each streaming 1 MiB in 16 KiB writes every
	// 100 ms: the 20 carried hold their slots for about 6 s, long after
	// the other 20 were refused.
	const attempts = 2 * capsPerPod
	type result struct {
		rep probe.StreamReport
		err error
	}
	done := make(chan result, 1)
	go func() { // owned by the test: it waits on done
		rep, err := e.streamErr(ctx, probeBin, client, []string{vip}, "--count", strconv.Itoa(attempts),
			"--concurrency", strconv.Itoa(attempts), "--min-size", "1048576", "--max-size", "1048576",
			"--chunk", "16384", "--pace", "100ms", "--timeout", "60s")
		done <- result{rep, err}
	}()
	eventually(ctx, t, 30*time.Second, "the connections over the cap refused", func() error {
		if n := refused() - before; n < capsPerPod {
			return fmt.Errorf("%v refused so far", n)
		}
		return nil
	})
	// While the client holds its cap: the neighbour on the same node is
	// served, and ztunnel's memory is what it was plus the held
	// connections.
	nb, err := e.streamErr(ctx, probeBin, neighbour, []string{vip}, small...)
	if err != nil {
		t.Fatal(err)
	}
	if nb.Outcomes[probe.OK] != nb.Conns {
		t.Errorf("the neighbour pod on %s was affected by the client's cap: outcomes %v, errors %v", node, nb.Outcomes, nb.Errors)
	}
	memHeld := e.usageOf(ctx, t, z, "ztunnel", 15000)
	res := <-done
	if res.err != nil {
		t.Fatalf("stream: %v", res.err)
	}
	rep := res.rep
	t.Logf("%d connections at once with a cap of %d: outcomes %v, errors %v", attempts, capsPerPod, rep.Outcomes, rep.Errors)
	if rep.Outcomes[probe.OK] != capsPerPod || rep.Outcomes[probe.Refused] != attempts-capsPerPod {
		t.Errorf("want exactly %d carried and %d refused; outcomes %v (bad: %+v)", capsPerPod, attempts-capsPerPod, rep.Outcomes, rep.Bad)
	}
	if n := rep.Outcomes[probe.Truncated] + rep.Outcomes[probe.Corrupted]; n > 0 {
		t.Errorf("%d connections truncated or corrupted: %+v", n, rep.Bad)
	}
	if n := refused() - before; n != attempts-capsPerPod {
		t.Errorf("weft_ztunnel_connections_refused_total{outbound,pod_limit} grew by %v, want %d", n, attempts-capsPerPod)
	}
	logs, err := e.kubectl(ctx, nil, "-n", "weft-system", "logs", z.Name)
	if err != nil {
		t.Fatalf("ztunnel logs: %v", err)
	}
	lines := strings.Count(logs, "refusing connections over the connection cap")
	t.Logf("ztunnel on %s logged %d refusal lines for %d refusals", node, lines, attempts-capsPerPod)
	if lines < 1 || lines > 3 {
		t.Errorf("want the refusals logged rate-limited (1 to 3 lines in a burst), got %d lines", lines)
	}
	grew := memHeld.RSSKiB - memBefore.RSSKiB
	t.Logf("ztunnel on %s: %s before, %s with the cap held (RSS %+d KiB)", node, memBefore, memHeld, grew)
	if grew > 64<<10 {
		t.Errorf("ztunnel RSS grew by %d KiB holding %d connections", grew, capsPerPod)
	}
}
