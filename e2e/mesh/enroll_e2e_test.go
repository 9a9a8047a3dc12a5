//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/e2e/echo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEnrollByLabel labels namespace demo: a request from the client to an
// echo pod on the other node goes through both ztunnels over HBONE with the
// client's SPIFFE identity; unlabelling makes it plaintext again, with the
// same app pods.
func TestEnrollByLabel(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	zc, zs := e.ztunnelOn(ctx, t, client.Spec.NodeName), e.ztunnelOn(ctx, t, server.Spec.NodeName)
	const clientID = "spiffe://cluster.local/ns/demo/sa/client"
	fromClient := []string{`source_principal="` + clientID + `"`, `destination_workload="echo"`, `connection_security_policy="mutual_tls"`}

	if _, err := e.call(ctx, client, "--url", httpURL(server, "/before")); err != nil {
		t.Fatalf("plaintext call before enrolling: %v", err)
	}

	start := time.Now()
	// Issue: labelling enrolls running pods, without restarts, within 2 s.
	if took := e.labelNamespace(ctx, t, "demo", "ambient"); took > 2*time.Second {
		t.Errorf("running pods enrolled %s after kubectl label, want within 2s", took.Round(10*time.Millisecond))
	}
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })

	srcBefore := e.opened(ctx, t, zc, append(fromClient, `reporter="source"`)...)
	dstBefore := e.opened(ctx, t, zs, append(fromClient, `reporter="destination"`)...)
	var rep = mustCall(ctx, t, e, client, "--url", httpURL(server, "/enrolled"))
	t.Logf("first request through the mesh %s after kubectl label", time.Since(start).Round(10*time.Millisecond))
	if rep.Pod.Name != server.Name {
		t.Errorf("answered by %q, want %q", rep.Pod.Name, server.Name)
	}
	if host, _, _ := net.SplitHostPort(rep.Source); host != client.Status.PodIP {
		t.Errorf("server saw source %s, want the client's IP %s (preserved by ztunnel)", rep.Source, client.Status.PodIP)
	}
	eventually(ctx, t, 5*time.Second, "both ztunnels count the connection with the client's identity", func() error {
		src := e.opened(ctx, t, zc, append(fromClient, `reporter="source"`)...)
		dst := e.opened(ctx, t, zs, append(fromClient, `reporter="destination"`)...)
		if src <= srcBefore || dst <= dstBefore {
			return fmt.Errorf("source ztunnel %s: %v -> %v, destination ztunnel %s: %v -> %v", zc.Name, srcBefore, src, zs.Name, dstBefore, dst)
		}
		return nil
	})

	t.Run("connection in both config dumps, on 15008", func(t *testing.T) {
		// Hold a raw TCP connection open while reading the dumps.
		hold, stop := context.WithTimeout(ctx, 20*time.Second)
		defer stop()
		done := make(chan error, 1)
		go func() {
			_, err := e.exec(hold, client.Namespace, client.Name, "bash", "-c",
				fmt.Sprintf("exec 3<>/dev/tcp/%s/9000; echo hi >&3; read -u 3 l; sleep 15", server.Status.PodIP))
			done <- err
		}()
		target := net.JoinHostPort(server.Status.PodIP, "9000")
		eventually(ctx, t, 10*time.Second, "connection shows in config dumps", func() error {
			var out, in bool
			for _, c := range e.configDump(ctx, t, zc).Connections {
				out = out || (c.Direction == "outbound" && c.Protocol == "HBONE" && c.Remote == target &&
					c.RemoteTarget == net.JoinHostPort(server.Status.PodIP, "15008") && strings.HasPrefix(c.Local, client.Status.PodIP+":"))
			}
			for _, c := range e.configDump(ctx, t, zs).Connections {
				in = in || (c.Direction == "inbound" && c.Protocol == "HBONE" && c.Local == target && strings.HasPrefix(c.Remote, client.Status.PodIP+":"))
			}
			if !out || !in {
				return fmt.Errorf("outbound HBONE to %s on %s: %v; inbound on %s: %v", target, zc.Name, out, zs.Name, in)
			}
			return nil
		})
		stop()
		// Stopping kills the held connection, so its error is expected; a
		// connection that ended early already failed the dump checks above.
		if err := <-done; err != nil {
			t.Logf("held connection ended: %v", err)
		}
	})

	t.Run("the demo's command: kubectl exec, Service by DNS name", func(t *testing.T) {
		out, err := e.kubectl(ctx, nil, "-n", "demo", "exec", "deploy/client", "--", "/usr/local/bin/echo", "client", "--url", "http://echo.demo:8080/demo")
		if err != nil {
			t.Fatal(err)
		}
		if rep := parseReply(t, strings.TrimSpace(out)); rep.Pod.Namespace != "demo" || !strings.HasPrefix(rep.Pod.Name, "echo-") {
			t.Errorf("answered by %+v", rep.Pod)
		}
	})

	t.Run("destination logs the client identity", func(t *testing.T) {
		logs, err := e.kubectl(ctx, nil, "-n", "weft-system", "logs", zs.Name)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range strings.Split(logs, "\n") {
			found = found || (strings.Contains(l, `"connection complete"`) && strings.Contains(l, `"direction":"inbound"`) && strings.Contains(l, clientID))
		}
		if !found {
			t.Errorf("no inbound access log with %s in %s's logs", clientID, zs.Name)
		}
	})

	uids := map[string]string{}
	for _, p := range []corev1.Pod{client, server} {
		uids[p.Name] = string(p.UID)
	}
	t.Run("unlabel: plaintext again without restarting the apps", func(t *testing.T) {
		e.labelNamespace(ctx, t, "demo", "")
		dstBefore := e.opened(ctx, t, zs, fromClient...)
		rep := mustCall(ctx, t, e, client, "--url", httpURL(server, "/unenrolled"))
		if rep.Pod.Name != server.Name {
			t.Errorf("answered by %q", rep.Pod.Name)
		}
		time.Sleep(time.Second)
		if dst := e.opened(ctx, t, zs, fromClient...); dst != dstBefore {
			t.Errorf("destination ztunnel still counts connections from the client: %v -> %v", dstBefore, dst)
		}
		for name, uid := range uids {
			p, err := e.cs.CoreV1().Pods("demo").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if string(p.UID) != uid || p.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("pod %s was restarted or replaced (uid %s -> %s, restarts %d)", name, uid, p.UID, p.Status.ContainerStatuses[0].RestartCount)
			}
			if a := p.Annotations[redirectionAnnot]; a != "" {
				t.Errorf("pod %s still has %s=%q", name, redirectionAnnot, a)
			}
		}
	})
}

func mustCall(ctx context.Context, t *testing.T, e *meshEnv, from corev1.Pod, args ...string) echo.Reply {
	t.Helper()
	rep, err := e.call(ctx, from, args...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
