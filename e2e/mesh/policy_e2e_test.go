//go:build e2e

package mesh_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// policyApply is how long a policy change may take to reach new
// connections (issue: within 2 s; a little slack for the loaded lab).
const policyApply = 3 * time.Second

// expect polls until a call from pod with args succeeds (ok) or fails.
func (e *meshEnv) expect(ctx context.Context, t *testing.T, what string, ok bool, from corev1.Pod, args ...string) {
	t.Helper()
	eventually(ctx, t, policyApply, what, func() error {
		_, err := e.call(ctx, from, args...)
		switch {
		case ok && err != nil:
			return err
		case !ok && err == nil:
			return errors.New("call succeeded, want it refused")
		}
		return nil
	})
	// And it stays that way.
	_, err := e.call(ctx, from, args...)
	if (err == nil) != ok {
		t.Errorf("%s: second call: err=%v, want success=%v", what, err, ok)
	}
}

func TestAuthorizationPolicy(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	other := e.startPod(ctx, t, "demo", "other", "other", client.Spec.NodeName, nil)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	httpArgs := []string{"--url", httpURL(server, "/authz")}
	tcpArgs := []string{"--tcp", net.JoinHostPort(server.Status.PodIP, "9000")}
	e.expect(ctx, t, "no policy: client allowed", true, client, httpArgs...)
	e.expect(ctx, t, "no policy: other allowed", true, other, httpArgs...)

	t.Run("deny-all", func(t *testing.T) {
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
`)
		e.expect(ctx, t, "deny-all: client refused", false, client, httpArgs...)
		e.expect(ctx, t, "deny-all: other refused", false, other, httpArgs...)
	})
	e.expect(ctx, t, "deny-all removed: client allowed again", true, client, httpArgs...)

	t.Run("ALLOW by principal", func(t *testing.T) {
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/demo/sa/client"]}
`)
		e.expect(ctx, t, "allow principal: client allowed", true, client, httpArgs...)
		e.expect(ctx, t, "allow principal: other refused", false, other, httpArgs...)
	})

	t.Run("ALLOW by namespace", func(t *testing.T) {
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-other-ns, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: ["elsewhere"]}
`)
		e.expect(ctx, t, "allow namespace elsewhere: client refused", false, client, httpArgs...)
	})
	e.expect(ctx, t, "allow policies removed: other allowed again", true, other, httpArgs...)

	t.Run("DENY by port", func(t *testing.T) {
		// A connection open before the DENY is closed by it (ztunnel
		// re-checks open connections on every policy change).
		held := e.holdConn(ctx, t, client, server)
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-tcp, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules:
  - to:
    - operation: {ports: ["9000"]}
`)
		e.expect(ctx, t, "deny port 9000: tcp refused", false, client, tcpArgs...)
		e.expect(ctx, t, "deny port 9000: http allowed", true, client, httpArgs...)
		if got := held.finish(t); got == "first|second" {
			t.Error("connection opened before the DENY still carries traffic after it")
		}
	})
	e.expect(ctx, t, "deny removed: tcp allowed again", true, client, tcpArgs...)
}

// TestPeerAuthentication: STRICT refuses a client outside the mesh,
// PERMISSIVE admits it; mesh clients work under both.
func TestPeerAuthentication(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.useNamespace(ctx, t, "outside")
	outsider := e.startPod(ctx, t, "outside", "outsider", "outsider", client.Spec.NodeName, nil)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	args := []string{"--url", httpURL(server, "/peerauthn")}

	e.expect(ctx, t, "default PERMISSIVE: outsider admitted", true, outsider, args...)
	t.Run("STRICT", func(t *testing.T) {
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec:
  mtls: {mode: STRICT}
`)
		e.expect(ctx, t, "STRICT: outsider refused", false, outsider, args...)
		e.expect(ctx, t, "STRICT: mesh client allowed", true, client, args...)
	})
	t.Run("PERMISSIVE", func(t *testing.T) {
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec:
  mtls: {mode: PERMISSIVE}
`)
		e.expect(ctx, t, "PERMISSIVE: outsider admitted", true, outsider, args...)
		e.expect(ctx, t, "PERMISSIVE: mesh client allowed", true, client, args...)
	})
}

// TestOutsideMesh: a client outside the mesh reaches an enrolled server,
// and an enrolled client reaches a server outside the mesh (passthrough).
func TestOutsideMesh(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.useNamespace(ctx, t, "plain")
	var plainNode string
	for _, n := range e.c.Plan.Nodes {
		if n.Name != client.Spec.NodeName {
			plainNode = n.Name
		}
	}
	plainClient := e.startPod(ctx, t, "plain", "plain-client", "plain-client", client.Spec.NodeName, nil)
	plainServer := e.startPod(ctx, t, "plain", "plain-server", "plain-server", plainNode, nil)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })

	t.Run("outside client to enrolled server", func(t *testing.T) {
		rep := mustCall(ctx, t, e, plainClient, "--url", httpURL(server, "/from-outside"))
		if host, _, _ := net.SplitHostPort(rep.Source); rep.Pod.Name != server.Name || host != plainClient.Status.PodIP {
			t.Errorf("reply %+v: want %s seeing %s", rep, server.Name, plainClient.Status.PodIP)
		}
	})
	t.Run("enrolled client to outside server", func(t *testing.T) {
		zc := e.ztunnelOn(ctx, t, client.Spec.NodeName)
		rep := mustCall(ctx, t, e, client, "--url", httpURL(plainServer, "/to-outside"))
		if host, _, _ := net.SplitHostPort(rep.Source); rep.Pod.Name != plainServer.Name || host != client.Status.PodIP {
			t.Errorf("reply %+v: want %s seeing %s", rep, plainServer.Name, client.Status.PodIP)
		}
		if n := e.opened(ctx, t, zc, `source_workload="client"`, `destination_workload="plain-server"`, `connection_security_policy="mutual_tls"`); n != 0 {
			t.Errorf("ztunnel counted %v mTLS connections to a server outside the mesh", n)
		}
	})
}

// finish sends the second line on a held connection and returns what the
// shell printed ("first|second" when the connection still works).
func (h *heldConn) finish(t *testing.T) string {
	t.Helper()
	if err := os.WriteFile(h.trigger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-h.done:
		return got
	case <-time.After(20 * time.Second):
		t.Error("held connection: no answer")
		return ""
	}
}
