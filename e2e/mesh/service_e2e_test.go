//go:build e2e

package mesh_test

import (
	"context"
	"net"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServiceVIPSpreads: TCP connections from an enrolled client to
// the echo Service's VIP reach every endpoint, each over HBONE.
func TestServiceVIPSpreads(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, _ := e.clientAndServer(ctx, t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	svc, err := e.cs.CoreV1().Services("demo").Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zc := e.ztunnelOn(ctx, t, client.Spec.NodeName)
	labels := []string{`source_workload="client"`, `destination_workload="echo"`, `connection_security_policy="mutual_tls"`, `reporter="source"`}
	before := e.opened(ctx, t, zc, labels...)
	const n = 12
	out, err := e.exec(ctx, client.Namespace, client.Name, "echo", "client", "--count", "12", "--tcp", net.JoinHostPort(svc.Spec.ClusterIP, "9000"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		seen[parseReply(t, line).Pod.Name]++
	}
	if len(seen) < 2 {
		t.Errorf("%d calls to %s reached only %v", n, svc.Spec.ClusterIP, seen)
	}
	t.Logf("VIP spread: %v", seen)
	if after := e.opened(ctx, t, zc, labels...); after-before < n {
		t.Errorf("source ztunnel counted %v new mTLS connections to echo, want >= %d", after-before, n)
	}
}
