//go:build e2e

package mesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/weftmesh/weft/e2e/echo"
)

const (
	ambientLabel     = "istio.io/dataplane-mode"
	redirectionAnnot = "ambient.istio.io/redirection"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readyPods lists the Ready pods of ns matching selector.
func (e *meshEnv) readyPods(ctx context.Context, t *testing.T, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				pods = append(pods, p)
			}
		}
		return len(pods) >= n, nil
	})
	if err != nil {
		out, _ := e.kubectl(ctx, nil, "get", "pods", "-A", "-o", "wide")
		t.Fatalf("want %d Ready pods %s in %s: %v\n%s", n, selector, ns, err, out)
	}
	return pods
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// clientAndServer picks the demo client and an echo pod on another node.
func (e *meshEnv) clientAndServer(ctx context.Context, t *testing.T) (client, server corev1.Pod) {
	t.Helper()
	client = e.readyPods(ctx, t, "demo", "app=client", 1)[0]
	for _, p := range e.readyPods(ctx, t, "demo", "app=echo", 2) {
		if p.Spec.NodeName != client.Spec.NodeName {
			return client, p
		}
	}
	t.Fatalf("no echo pod on a node other than the client's (%s)", client.Spec.NodeName)
	return
}

// ztunnelOn returns the ztunnel pod of node.
func (e *meshEnv) ztunnelOn(ctx context.Context, t *testing.T, node string) corev1.Pod {
	t.Helper()
	for _, p := range e.readyPods(ctx, t, "weft-system", "app=ztunnel", 2) {
		if p.Spec.NodeName == node {
			return p
		}
	}
	t.Fatalf("no ready ztunnel on %s", node)
	return corev1.Pod{}
}

// ztunnelGet fetches a path from a ztunnel's loopback admin (15000) or
// metrics (15020) port.
func (e *meshEnv) ztunnelGet(ctx context.Context, t *testing.T, z corev1.Pod, port int, path string) string {
	t.Helper()
	out, err := e.exec(ctx, z.Namespace, z.Name, "curl", "-sf", "--max-time", "5", "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))+path)
	if err != nil {
		t.Fatalf("ztunnel %s %d%s: %v", z.Name, port, path, err)
	}
	return out
}

// counter sums the samples of metric whose label set contains every one of
// labels (`name="value"` strings).
func counter(metrics, metric string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// opened counts connections a ztunnel opened with the given labels.
func (e *meshEnv) opened(ctx context.Context, t *testing.T, z corev1.Pod, labels ...string) float64 {
	t.Helper()
	return counter(e.ztunnelGet(ctx, t, z, 15020, "/metrics"), "istio_tcp_connections_opened_total", labels...)
}

// connection is one entry of config_dump's connections.
type connection struct {
	Workload     string `json:"workload"`
	Direction    string `json:"direction"`
	Local        string `json:"local"`
	Remote       string `json:"remote"`
	RemoteTarget string `json:"remoteTarget"`
	Protocol     string `json:"protocol"`
}

type configDump struct {
	Connections []connection `json:"connections"`
	XDS         struct {
		Connected bool
	} `json:"xds"`
	WorkloadState []struct {
		Name, Namespace, State string
	} `json:"workloadState"`
}

func (e *meshEnv) configDump(ctx context.Context, t *testing.T, z corev1.Pod) configDump {
	t.Helper()
	var d configDump
	if err := json.Unmarshal([]byte(e.ztunnelGet(ctx, t, z, 15000, "/config_dump")), &d); err != nil {
		t.Fatalf("config_dump of %s: %v", z.Name, err)
	}
	return d
}

// waitXDSConnected waits until every ztunnel has an open xDS stream to
// istiod-lite. After the control plane was down, ztunnel retries with a
// back-off of up to 15 s; a test that changes mesh state right after
// istiod-lite comes back would otherwise time that back-off, not the
// propagation it means to check.
func (e *meshEnv) waitXDSConnected(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, z := range e.readyPods(ctx, t, "weft-system", "app=ztunnel", 2) {
		eventually(ctx, t, time.Minute, "ztunnel "+z.Name+" reconnected to istiod-lite", func() error {
			if !e.configDump(ctx, t, z).XDS.Connected {
				return errors.New("xds stream not connected")
			}
			return nil
		})
	}
}

// call makes one echo client call from pod and returns its reply or error.
func (e *meshEnv) call(ctx context.Context, from corev1.Pod, args ...string) (echo.Reply, error) {
	out, err := e.exec(ctx, from.Namespace, from.Name, append([]string{"echo", "client", "--timeout", "3s"}, args...)...)
	if err != nil {
		return echo.Reply{}, err
	}
	var res echo.Result
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil || res.Reply == nil {
		return echo.Reply{}, fmt.Errorf("echo client output %q: %v", out, err)
	}
	return *res.Reply, nil
}

func httpURL(p corev1.Pod, path string) string {
	return "http://" + net.JoinHostPort(p.Status.PodIP, "8080") + path
}

// labelNamespace sets (value != "") or removes the dataplane-mode label of
// ns and waits until every running pod there that follows the namespace
// has the redirection annotation it implies. It returns the time from
// running kubectl label to that.
func (e *meshEnv) labelNamespace(ctx context.Context, t *testing.T, ns, value string) time.Duration {
	t.Helper()
	labelled := time.Now()
	arg := ambientLabel + "-"
	if value != "" {
		arg = ambientLabel + "=" + value
	}
	want := value == "ambient"
	if !want {
		e.endNamespaceWatch(ctx, t, ns)
	}
	if _, err := e.kubectl(ctx, nil, "label", "namespace", ns, arg, "--overwrite"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var enrolled []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		enrolled = enrolled[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Labels[ambientLabel] != "" {
				continue
			}
			if (p.Annotations[redirectionAnnot] == "enabled") != want {
				return false, nil
			}
			enrolled = append(enrolled, p)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("namespace %s %s=%q: pods not (un)enrolled: %v", ns, ambientLabel, value, err)
	}
	t.Logf("namespace %s %s=%q: every pod's redirection annotation followed in %s", ns, ambientLabel, value, time.Since(start).Round(10*time.Millisecond))
	took := time.Since(labelled)
	if want {
		e.watchNamespace(ctx, t, ns, enrolled)
	}
	return took
}

// eventually polls f every 200 ms for up to d and fails with its last error.
func eventually(ctx context.Context, t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	var last error
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		last = f()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, d, last)
	}
	t.Logf("%s: after %s", what, time.Since(start).Round(10*time.Millisecond))
}

// applyYAML applies a manifest and deletes it when the test ends.
func (e *meshEnv) applyYAML(ctx context.Context, t *testing.T, y string) {
	t.Helper()
	if _, err := e.kubectl(ctx, &y, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.kubectl(ctx, &y, "delete", "--ignore-not-found", "--wait=true", "-f", "-"); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
}

func parseReply(t *testing.T, line string) echo.Reply {
	t.Helper()
	var res echo.Result
	if err := json.Unmarshal([]byte(line), &res); err != nil || res.Reply == nil {
		t.Fatalf("echo client output %q: %v", line, err)
	}
	return *res.Reply
}
