//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

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
	labels := []string{`source_workload="client"`, `destination_workload="echo"`, `destination_service="echo.demo.svc.cluster.local"`, `connection_security_policy="mutual_tls"`, `reporter="source"`}
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

// spreadApp is a Service with two echo pods whose readiness is the file
// /ready/ok, so a test can take one out of the endpoints.
const spreadApp = `apiVersion: v1
kind: Service
metadata: {name: spread, namespace: demo}
spec:
  selector: {app: spread}
  ports:
  - {name: tcp, port: 9000, targetPort: 9000}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      initContainers:
      - name: ready
        image: weft/echo:dev
        command: [/bin/sh, -c, "touch /ready/ok"]
        volumeMounts: [{name: ready, mountPath: /ready}]
      containers:
      - name: echo
        image: weft/echo:dev
        command: [/usr/local/bin/echo]
        args: [serve, --http=:8080, --tcp=:9000, --grpc=]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        readinessProbe:
          exec: {command: [/bin/sh, -c, "test -f /ready/ok"]}
          periodSeconds: 1
          failureThreshold: 1
        volumeMounts: [{name: ready, mountPath: /ready}]
      volumes:
      - {name: ready, emptyDir: {}}
`

// TestServiceEndpointUnready: an endpoint that goes unready stops
// receiving new connections through the VIP.
func TestServiceEndpointUnready(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, _ := e.clientAndServer(ctx, t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	e.applyYAML(ctx, t, spreadApp)
	pods := e.readyPods(ctx, t, "demo", "app=spread", 2)
	svc, err := e.cs.CoreV1().Services("demo").Get(ctx, "spread", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "9000")
	spread := func() (map[string]int, error) {
		out, err := e.exec(ctx, client.Namespace, client.Name, "echo", "client", "--count", "10", "--timeout", "3s", "--tcp", vip)
		if err != nil {
			return nil, err
		}
		seen := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			seen[parseReply(t, line).Pod.Name]++
		}
		return seen, nil
	}
	eventually(ctx, t, 10*time.Second, "both ready endpoints receive connections", func() error {
		seen, err := spread()
		if err == nil && len(seen) < 2 {
			err = fmt.Errorf("reached only %v", seen)
		}
		return err
	})
	gone := pods[0]
	if _, err := e.kubectl(ctx, nil, "exec", "-n", "demo", gone.Name, "-c", "echo", "--", "rm", "/ready/ok"); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 15*time.Second, "the unready endpoint gets no new connections", func() error {
		seen, err := spread()
		if err == nil && (seen[gone.Name] > 0 || len(seen) != 1) {
			err = fmt.Errorf("still reached %v", seen)
		}
		return err
	})
}
