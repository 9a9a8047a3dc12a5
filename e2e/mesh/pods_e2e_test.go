//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// echoPod is a standalone echo pod of namespace ns with service account
// sa (created too), extra pod labels and an optional node.
func echoPod(ns, name, sa, node string, labels map[string]string) string {
	var l strings.Builder
	for k, v := range labels {
		fmt.Fprintf(&l, "\n    %s: %q", k, v)
	}
	nodeName := ""
	if node != "" {
		nodeName = "\n  nodeName: " + node
	}
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: %[3]s, namespace: %[1]s}
automountServiceAccountToken: false
---
apiVersion: v1
kind: Pod
metadata:
  name: %[2]s
  namespace: %[1]s
  labels:
    app: %[2]s%[4]s
spec:
  serviceAccountName: %[3]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 2%[5]s
  containers:
  - name: echo
    image: weft/echo:dev
    command: [/usr/local/bin/echo]
    args: [serve, --http=:8080, --tcp=:9000, --grpc=]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: SERVICE_ACCOUNT, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`, ns, name, sa, l.String(), nodeName)
}

// startPod applies an echo pod, deletes it when the test ends and returns
// it once Ready.
func (e *meshEnv) startPod(ctx context.Context, t *testing.T, ns, name, sa, node string, labels map[string]string) corev1.Pod {
	t.Helper()
	e.applyYAML(ctx, t, echoPod(ns, name, sa, node, labels))
	return e.readyPods(ctx, t, ns, "app="+name, 1)[0]
}

// useNamespace creates namespace ns (unlabelled) for the test.
func (e *meshEnv) useNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	e.applyYAML(ctx, t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n")
}

// mtlsFrom are the metric labels of HBONE connections from a principal to
// the echo server.
func mtlsFrom(principal string) []string {
	return []string{`source_principal="` + principal + `"`, `destination_workload="echo"`, `connection_security_policy="mutual_tls"`, `reporter="destination"`}
}

// viaHBONE calls server from pod and reports whether the server's ztunnel
// counted the call as an mTLS connection from principal.
func (e *meshEnv) viaHBONE(ctx context.Context, t *testing.T, from, server corev1.Pod, principal string) bool {
	t.Helper()
	zs := e.ztunnelOn(ctx, t, server.Spec.NodeName)
	before := e.opened(ctx, t, zs, mtlsFrom(principal)...)
	mustCall(ctx, t, e, from, "--url", httpURL(server, "/via"))
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if e.opened(ctx, t, zs, mtlsFrom(principal)...) > before {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// TestPodsBeforeAndAfterLabel: a pod running before the label and one
// created after it are both enrolled; a pod labelled
// istio.io/dataplane-mode=none stays out and talks plaintext.
func TestPodsBeforeAndAfterLabel(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	before := e.startPod(ctx, t, "demo", "early", "early", client.Spec.NodeName, nil)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	cniBefore := e.cniEnrollments(ctx, t, client.Spec.NodeName)
	after := e.startPod(ctx, t, "demo", "late", "late", client.Spec.NodeName, nil)
	// Enrolled during its CNI ADD: captured before its first packet.
	if n := e.cniEnrollments(ctx, t, client.Spec.NodeName); n != cniBefore+1 {
		t.Errorf("node agent on %s enrolled %v pods from CNI ADD, want %v", client.Spec.NodeName, n, cniBefore+1)
	}
	optOut := e.startPod(ctx, t, "demo", "optout", "optout", client.Spec.NodeName, map[string]string{ambientLabel: "none"})

	for _, c := range []struct {
		pod      corev1.Pod
		enrolled bool
	}{{before, true}, {after, true}, {optOut, false}} {
		t.Run(c.pod.Name, func(t *testing.T) {
			var p *corev1.Pod
			eventually(ctx, t, 10*time.Second, c.pod.Name+" redirection annotation", func() error {
				var err error
				if p, err = e.cs.CoreV1().Pods("demo").Get(ctx, c.pod.Name, metav1.GetOptions{}); err != nil {
					return err
				}
				if got := p.Annotations[redirectionAnnot] == "enabled"; got != c.enrolled {
					return fmt.Errorf("%s=%q, want enrolled=%v", redirectionAnnot, p.Annotations[redirectionAnnot], c.enrolled)
				}
				return nil
			})
			principal := "spiffe://cluster.local/ns/demo/sa/" + c.pod.Name
			if got := e.viaHBONE(ctx, t, *p, server, principal); got != c.enrolled {
				t.Errorf("call from %s counted as mTLS from %s: %v, want %v", c.pod.Name, principal, got, c.enrolled)
			}
		})
	}
}

// cniEnrollments is the node agent's count of pods enrolled during their
// CNI ADD (before their containers start) on node.
func (e *meshEnv) cniEnrollments(ctx context.Context, t *testing.T, node string) float64 {
	t.Helper()
	for _, a := range e.readyPods(ctx, t, "weft-system", "app=weft-cni-agent", 2) {
		if a.Spec.NodeName != node {
			continue
		}
		out, err := e.exec(ctx, a.Namespace, a.Name, "curl", "-sf", "--max-time", "5", "http://127.0.0.1:15014/metrics")
		if err != nil {
			t.Fatal(err)
		}
		return counter(out, "weft_cni_enrollments_total", `op="enroll"`, `source="cni"`)
	}
	t.Fatalf("no node agent on %s", node)
	return 0
}
