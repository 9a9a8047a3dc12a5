//go:build e2e

package mesh_test

import (
	"fmt"
	"testing"
	"time"
)

const manyPods = 20

// manyApp is a namespace with manyPods echo pods spread over the nodes.
var manyApp = fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: many}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: many, namespace: many}
spec:
  replicas: %d
  selector: {matchLabels: {app: many}}
  template:
    metadata: {labels: {app: many}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector: {matchLabels: {app: many}}
      containers:
      - name: echo
        image: weft/echo:dev
        command: [/usr/local/bin/echo]
        args: [serve, --http=:8080, --tcp=, --grpc=]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
`, manyPods)

// TestEnrollRunningPods measures, for manyPods running pods, the time from
// kubectl label to every pod enrolled and to the first mTLS connection
// between two of them on different nodes.
func TestEnrollRunningPods(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	e.applyYAML(ctx, t, manyApp)
	pods := e.readyPods(ctx, t, "many", "app=many", manyPods)
	from, to := pods[0], pods[0]
	for _, p := range pods {
		if p.Spec.NodeName != from.Spec.NodeName {
			to = p
		}
	}
	if to.Name == from.Name {
		t.Fatal("all pods on one node")
	}
	zs := e.ztunnelOn(ctx, t, to.Spec.NodeName)
	labels := []string{`source_workload_namespace="many"`, `destination_workload_namespace="many"`, `connection_security_policy="mutual_tls"`, `reporter="destination"`}
	before := e.opened(ctx, t, zs, labels...)

	start := time.Now()
	if _, err := e.kubectl(ctx, nil, "label", "namespace", "many", ambientLabel+"=ambient"); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 10*time.Second, "first mTLS connection", func() error {
		if _, err := e.call(ctx, from, "--url", httpURL(to, "/many")); err != nil {
			return err
		}
		if e.opened(ctx, t, zs, labels...) <= before {
			return fmt.Errorf("not counted as mTLS yet")
		}
		return nil
	})
	firstMTLS := time.Since(start)
	e.labelNamespace(ctx, t, "many", "ambient") // waits for every pod's annotation
	t.Logf("%d running pods: first mTLS connection %s after kubectl label; all enrolled after %s",
		manyPods, firstMTLS.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))
	e.labelNamespace(ctx, t, "many", "")
}
