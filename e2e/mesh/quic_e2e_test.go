//go:build e2e

package mesh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// quicNamespace is the namespace of the QUIC transport test: enrolled and
// labelled for HBONE over QUIC.
const quicNamespace = "quic"

// advertisesQUIC reports whether ztunnel z's state has the workload
// ns/name with the weft.dev/hbone-quic extension.
func (e *meshEnv) advertisesQUIC(ctx context.Context, t *testing.T, z corev1.Pod, ns, name string) (bool, error) {
	t.Helper()
	var d struct {
		Workloads []struct {
			Name, Namespace string
			Extensions      []struct{ Name string } `json:"extensions"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(e.ztunnelGet(ctx, t, z, 15000, "/config_dump")), &d); err != nil {
		return false, err
	}
	for _, w := range d.Workloads {
		if w.Namespace != ns || w.Name != name {
			continue
		}
		for _, x := range w.Extensions {
			if x.Name == "weft.dev/hbone-quic" {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("workload %s/%s not in %s's state", ns, name, z.Name)
}

// tunnels reads weft_hbone_tunnels_total of ztunnel z.
func (e *meshEnv) tunnels(ctx context.Context, t *testing.T, z corev1.Pod, direction, transport string) float64 {
	t.Helper()
	return counter(e.ztunnelGet(ctx, t, z, 15020, "/metrics"), "weft_hbone_tunnels_total",
		`direction="`+direction+`"`, `transport="`+transport+`"`)
}

// fallbacks reads weft_hbone_quic_fallbacks_total (no labels) of ztunnel z.
func (e *meshEnv) fallbacks(ctx context.Context, t *testing.T, z corev1.Pod) float64 {
	t.Helper()
	for _, line := range strings.Split(e.ztunnelGet(ctx, t, z, 15020, "/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, "weft_hbone_quic_fallbacks_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("weft_hbone_quic_fallbacks_total %q: %v", v, err)
			}
			return f
		}
	}
	return 0
}

// dropUDPHBONE drops UDP to and from port 15008 in the forward path of
// every lab node (the underlay between pods) until the test ends.
func (e *meshEnv) dropUDPHBONE(ctx context.Context, t *testing.T) {
	t.Helper()
	rules := [][]string{{"-p", "udp", "--dport", "15008", "-j", "DROP"}, {"-p", "udp", "--sport", "15008", "-j", "DROP"}}
	ipt := func(ctx context.Context, netns, op string, rule []string) error {
		args := append([]string{"netns", "exec", netns, "iptables", "-w", op, "FORWARD"}, rule...)
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s in %s: %w: %s", op, netns, err, out)
		}
		return nil
	}
	for _, n := range e.c.Plan.Nodes {
		for _, r := range rules {
			if err := ipt(ctx, n.Netns, "-I", r); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := ipt(ctx, n.Netns, "-D", r); err != nil {
					t.Errorf("remove underlay drop: %v", err)
				}
			})
		}
	}
}

// quicSetup creates the QUIC namespace with an echo server and a client
// pod on two nodes and a service for the server, starts the plaintext
// watch of the two, and returns them with the call arguments of each
// target (service VIP, pod IP).
func (e *meshEnv) quicSetup(ctx context.Context, t *testing.T) (client, server corev1.Pod, targets map[string][]string) {
	t.Helper()
	client0, server0 := e.clientAndServer(ctx, t)
	clientNode, serverNode := client0.Spec.NodeName, server0.Spec.NodeName

	e.applyYAML(ctx, t, `apiVersion: v1
kind: Namespace
metadata:
  name: `+quicNamespace+`
  labels:
    istio.io/dataplane-mode: ambient
    weft.dev/hbone-transport: quic
---
apiVersion: v1
kind: Service
metadata: {name: quic-echo, namespace: `+quicNamespace+`}
spec:
  selector: {app: quic-echo}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`)
	server = e.startPod(ctx, t, quicNamespace, "quic-echo", "quic-echo", serverNode, nil)
	client = e.startPod(ctx, t, quicNamespace, "quic-client", "quic-client", clientNode, nil)
	for _, p := range []corev1.Pod{server, client} {
		if p.Annotations[redirectionAnnot] != "enabled" {
			t.Fatalf("pod %s not enrolled: annotations %v", p.Name, p.Annotations)
		}
	}
	e.assertNoPlaintext(ctx, t, client, server)
	vip, err := e.kubectl(ctx, nil, "-n", quicNamespace, "get", "service", "quic-echo", "-o", "jsonpath={.spec.clusterIP}")
	if err != nil {
		t.Fatal(err)
	}
	targets = map[string][]string{
		"service VIP": {"--url", "http://" + net.JoinHostPort(strings.TrimSpace(vip), "80") + "/quic"},
		"pod IP":      {"--url", httpURL(server, "/quic")},
	}
	return client, server, targets
}

// callAll calls every target from client once (retrying while the mesh
// converges, for up to within) and checks that server's ztunnel carried
// each call inbound over transport, and client's ztunnel outbound.
func (e *meshEnv) callAll(ctx context.Context, t *testing.T, client, server corev1.Pod, targets map[string][]string, transport string, within time.Duration) {
	t.Helper()
	zc, zs := e.ztunnelOn(ctx, t, client.Spec.NodeName), e.ztunnelOn(ctx, t, server.Spec.NodeName)
	for name, args := range targets {
		inBefore := e.tunnels(ctx, t, zs, "inbound", transport)
		outBefore := e.tunnels(ctx, t, zc, "outbound", transport)
		eventually(ctx, t, within, name+" over "+transport, func() error {
			rep, err := e.call(ctx, client, args...)
			if err != nil {
				return err
			}
			if rep.Pod.Name != server.Name {
				return fmt.Errorf("answered by %s, want %s", rep.Pod.Name, server.Name)
			}
			if n := e.tunnels(ctx, t, zs, "inbound", transport); n <= inBefore {
				return fmt.Errorf("server's ztunnel counts no new inbound %s tunnel (%v)", transport, n)
			}
			return nil
		})
		if n := e.tunnels(ctx, t, zc, "outbound", transport); n <= outBefore {
			t.Errorf("%s: client's ztunnel counts no new outbound %s tunnel (%v)", name, transport, n)
		}
	}
}

// TestQUICTransport: in a namespace labelled weft.dev/hbone-transport=quic,
// cross-node TCP between enrolled pods (to the service VIP and to the pod
// IP) goes through HBONE over QUIC, an L4 DENY blocks it, and nothing
// crosses the underlay in plaintext; with UDP 15008 dropped on the
// underlay the same traffic falls back to HBONE over HTTP/2.
func TestQUICTransport(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server, targets := e.quicSetup(ctx, t)
	zc, zs := e.ztunnelOn(ctx, t, client.Spec.NodeName), e.ztunnelOn(ctx, t, server.Spec.NodeName)
	eventually(ctx, t, time.Minute, "the client's ztunnel sees the server advertise QUIC", func() error {
		ok, err := e.advertisesQUIC(ctx, t, zc, quicNamespace, server.Name)
		if err == nil && !ok {
			err = fmt.Errorf("%s has no weft.dev/hbone-quic extension", server.Name)
		}
		return err
	})

	e.callAll(ctx, t, client, server, targets, "quic", 30*time.Second)

	t.Run("L4 DENY over QUIC", func(t *testing.T) {
		e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client, namespace: `+quicNamespace+`}
spec:
  selector: {matchLabels: {app: quic-echo}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/`+quicNamespace+`/sa/quic-client"]}
`)
		for name, args := range targets {
			e.expect(ctx, t, "deny client: "+name+" refused", false, client, args...)
		}
	})
	for name, args := range targets {
		e.expect(ctx, t, "deny removed: "+name+" allowed", true, client, args...)
	}

	t.Run("UDP 15008 dropped: fallback to HTTP/2", func(t *testing.T) {
		fallbacks := e.fallbacks(ctx, t, zc)
		e.dropUDPHBONE(ctx, t)
		e.callAll(ctx, t, client, server, targets, "h2", 30*time.Second)
		if n := e.fallbacks(ctx, t, zc); n <= fallbacks {
			t.Errorf("client's ztunnel counts no QUIC fallback (%v)", n)
		}
		// Once fallen back, calls go straight to HTTP/2.
		quic := e.tunnels(ctx, t, zs, "inbound", "quic")
		for name, args := range targets {
			if _, err := e.call(ctx, client, args...); err != nil {
				t.Errorf("%s after fallback: %v", name, err)
			}
		}
		if n := e.tunnels(ctx, t, zs, "inbound", "quic"); n != quic {
			t.Errorf("server's ztunnel counted %v QUIC tunnels while UDP 15008 is dropped", n-quic)
		}
	})
}

// TestQUICZtunnelRollingRestart: after a rolling restart of the ztunnel
// DaemonSet (new ztunnels bind UDP 15008 beside the draining ones), calls
// between the QUIC namespace's pods work throughout the end of it and go
// over QUIC again.
func TestQUICZtunnelRollingRestart(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server, targets := e.quicSetup(ctx, t)
	e.callAll(ctx, t, client, server, targets, "quic", 30*time.Second)
	args := targets["pod IP"]
	e.rollZtunnels(ctx, t, client, args...)
	// A QUIC attempt that failed during the hand-over sends the address to
	// HTTP/2 for a minute (the fallback period); QUIC must be back after.
	e.callAll(ctx, t, client, server, targets, "quic", 90*time.Second)
}
