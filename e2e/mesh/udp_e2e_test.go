//go:build e2e

package mesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// udpNamespace is the namespace of the UDP test: enrolled, with HBONE over
// QUIC, which UDP through the mesh needs.
const udpNamespace = "udp"

// enableUDPCapture restarts the CNI node agents with --capture-udp and
// puts their arguments back when the test ends.
func (e *meshEnv) enableUDPCapture(ctx context.Context, t *testing.T) {
	t.Helper()
	out, err := e.kubectl(ctx, nil, "-n", "weft-system", "get", "daemonset", "weft-cni-agent", "-o", "jsonpath={.spec.template.spec.containers[0].args}")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	if err := json.Unmarshal([]byte(out), &args); err != nil {
		t.Fatalf("agent args %q: %v", out, err)
	}
	set := func(ctx context.Context, args []string) error {
		b, _ := json.Marshal(args)
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":%s}]`, b)
		if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "patch", "daemonset", "weft-cni-agent", "--type=json", "-p", patch); err != nil {
			return err
		}
		_, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", "daemonset/weft-cni-agent", "--timeout=3m")
		return err
	}
	for _, a := range args {
		if a == "--capture-udp" {
			return
		}
	}
	if err := set(ctx, append(append([]string{}, args...), "--capture-udp")); err != nil {
		t.Fatalf("enable udp capture: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		if err := set(ctx, args); err != nil {
			t.Errorf("restore the agent's arguments: %v", err)
		}
	})
}

// udpCounter reads a weft_udp_* counter of the ztunnel on node.
func (e *meshEnv) udpCounter(ctx context.Context, t *testing.T, node, metric string, labels ...string) float64 {
	t.Helper()
	return counter(e.ztunnelGet(ctx, t, e.ztunnelOn(ctx, t, node), 15020, "/metrics"), metric, labels...)
}

// udpDiagnostics logs each node's ztunnel UDP metrics, UDP flows and
// QUIC advertisements.
func (e *meshEnv) udpDiagnostics(ctx context.Context, t *testing.T, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		z := e.ztunnelOn(ctx, t, n)
		var lines []string
		for _, l := range strings.Split(e.ztunnelGet(ctx, t, z, 15020, "/metrics"), "\n") {
			if strings.HasPrefix(l, "weft_udp") || strings.HasPrefix(l, "weft_hbone") {
				lines = append(lines, l)
			}
		}
		var dump struct {
			UDPFlows  json.RawMessage   `json:"udpFlows"`
			Workloads []json.RawMessage `json:"workloads"`
			Config    json.RawMessage   `json:"config"`
		}
		_ = json.Unmarshal([]byte(e.ztunnelGet(ctx, t, z, 15000, "/config_dump")), &dump)
		var quic []string
		for _, w := range dump.Workloads {
			if strings.Contains(string(w), `"`+udpNamespace+`"`) {
				quic = append(quic, string(w))
			}
		}
		t.Logf("ztunnel %s on %s:\nmetrics:\n%s\nudpFlows: %s\nconfig: %s\nudp workloads: %s", z.Name, n,
			strings.Join(lines, "\n"), dump.UDPFlows, dump.Config, strings.Join(quic, "\n"))
	}
}

// TestUDPThroughMesh: with UDP capture on and the QUIC transport, an
// enrolled UDP echo client and server on two nodes exchange datagrams
// through CONNECT-UDP tunnels (both ztunnels count the flow, the server
// sees the client pod's address), an L4 DENY on the UDP port blocks it,
// TCP keeps working, and no UDP or TCP payload crosses the underlay
// outside HBONE.
func TestUDPThroughMesh(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client0, server0 := e.clientAndServer(ctx, t)
	clientNode, serverNode := client0.Spec.NodeName, server0.Spec.NodeName
	e.enableUDPCapture(ctx, t)

	e.applyYAML(ctx, t, `apiVersion: v1
kind: Namespace
metadata:
  name: `+udpNamespace+`
  labels:
    istio.io/dataplane-mode: ambient
    weft.dev/hbone-transport: quic
`)
	server := e.startPod(ctx, t, udpNamespace, "udp-echo", "udp-echo", serverNode, nil)
	client := e.startPod(ctx, t, udpNamespace, "udp-client", "udp-client", clientNode, nil)
	for _, p := range []corev1.Pod{server, client} {
		if p.Annotations[redirectionAnnot] != "enabled" {
			t.Fatalf("pod %s not enrolled: annotations %v", p.Name, p.Annotations)
		}
	}
	addrs := podAddrs(t, []corev1.Pod{client, server})
	e.watch(ctx, t, addrs)
	t.Cleanup(func() {
		if err := e.unwatch(context.Background(), addrs); err != nil {
			t.Errorf("unwatch: %v", err)
		}
	})
	leakedBefore, err := e.plaintext(ctx, t).Leaked(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// On failure, before anything is torn down: what both ztunnels saw.
	t.Cleanup(func() {
		if t.Failed() {
			e.udpDiagnostics(context.Background(), t, clientNode, serverNode)
		}
	})
	udpArgs := []string{"--udp", net.JoinHostPort(server.Status.PodIP, "9001"), "--message", "ping"}
	outBefore := e.udpCounter(ctx, t, clientNode, "weft_udp_flows_opened_total", `direction="outbound"`, `path="tunnel"`)
	inBefore := e.udpCounter(ctx, t, serverNode, "weft_udp_flows_opened_total", `direction="inbound"`, `path="tunnel"`)
	eventually(ctx, t, 90*time.Second, "udp echo through the mesh", func() error {
		rep, err := e.call(ctx, client, udpArgs...)
		if err != nil {
			return err
		}
		if host, _, _ := net.SplitHostPort(rep.Source); host != client.Status.PodIP || rep.Pod.Name != "udp-echo" {
			return fmt.Errorf("reply from %s saw source %s, want udp-echo seeing %s", rep.Pod.Name, rep.Source, client.Status.PodIP)
		}
		return nil
	})
	// Through the tunnel: both ztunnels opened a CONNECT-UDP flow.
	if n := e.udpCounter(ctx, t, clientNode, "weft_udp_flows_opened_total", `direction="outbound"`, `path="tunnel"`); n <= outBefore {
		t.Errorf("client's ztunnel opened no outbound tunnel flow (%v)", n)
	}
	if n := e.udpCounter(ctx, t, serverNode, "weft_udp_flows_opened_total", `direction="inbound"`, `path="tunnel"`); n <= inBefore {
		t.Errorf("server's ztunnel opened no inbound tunnel flow (%v)", n)
	}
	if n := e.udpCounter(ctx, t, clientNode, "weft_udp_flows_opened_total", `path="passthrough"`); n != 0 {
		t.Errorf("client's ztunnel passed %v flows through outside the mesh", n)
	}

	t.Run("DENY by port", func(t *testing.T) {
		deniedBefore := e.udpCounter(ctx, t, serverNode, "weft_udp_dropped_datagrams_total", `direction="inbound"`, `reason="denied"`)
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-udp, namespace: `+udpNamespace+`}
spec:
  selector: {matchLabels: {app: udp-echo}}
  action: DENY
  rules:
  - to:
    - operation: {ports: ["9001"]}
`)
		e.expect(ctx, t, "deny port 9001: udp refused", false, client, udpArgs...)
		if n := e.udpCounter(ctx, t, serverNode, "weft_udp_dropped_datagrams_total", `direction="inbound"`, `reason="denied"`); n <= deniedBefore {
			t.Errorf("server's ztunnel counted no denied flow (%v)", n)
		}
		e.expect(ctx, t, "deny port 9001: tcp allowed", true, client, "--tcp", net.JoinHostPort(server.Status.PodIP, "9000"))
	})
	// A refused UDP call has no refusal to see: it fails only when the
	// client's 3 s timeout ends, so policyApply (3 s) would allow a single
	// attempt, made perhaps just before the removal reached the ztunnels.
	eventually(ctx, t, 15*time.Second, "deny removed: udp allowed again", func() error {
		_, err := e.call(ctx, client, udpArgs...)
		return err
	})

	leaked, err := e.plaintext(ctx, t).Leaked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if leaked != leakedBefore {
		flows, _ := e.plaintext(ctx, t).Flows(ctx)
		t.Fatalf("plaintext between enrolled pods: %d packets (flows: %s)", leaked-leakedBefore, strings.Join(flows, "; "))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test context expired")
	}
}
