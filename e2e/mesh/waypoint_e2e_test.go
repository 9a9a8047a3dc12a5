//go:build e2e

package mesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/e2e/echo"
)

// The waypoint suite runs in a namespace of its own so that its routes and
// policies never meet the other tests' traffic in demo.
const (
	wpNS       = "wpt"
	wpName     = "waypoint"
	wpService  = "echo." + wpNS + ".svc.cluster.local"
	wpTrust    = "spiffe://cluster.local/ns/" + wpNS + "/sa/"
	wpSettle   = 20 * time.Second // config to reach the waypoint (and ztunnels), with slack
	wpDeployed = 3 * time.Minute  // Gateway to a ready waypoint on the loaded lab
)

// wpEchoPod is an echo server pod of version v behind the Services echo
// and echo-<v>.
func wpEchoPod(v string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: echo-%[2]s
  namespace: %[1]s
  labels: {app: wecho, version: %[2]s}
spec:
  serviceAccountName: wecho
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 2
  containers:
  - name: echo
    image: weft/echo:dev
    command: [/usr/local/bin/echo]
    args: [serve, --http=:8080, --tcp=:9000, --grpc=:7070]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: SERVICE_ACCOUNT, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: VERSION, value: %[2]s}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`, wpNS, v)
}

// wpService is a Service over the echo pods matching selector.
func wpServiceYAML(name, selector string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {%[3]s}
  ports:
  - {name: http, port: 8080, targetPort: 8080, appProtocol: http}
  - {name: grpc, port: 7070, targetPort: 7070, appProtocol: grpc}
  - {name: tcp, port: 9000, targetPort: 9000, appProtocol: tcp}
`, wpNS, name, selector)
}

// wpApps is the suite's namespace (enrolled) and apps: echo v1 and v2
// behind Services echo (both), echo-v1 and echo-v2.
func wpApps() string {
	return strings.Join([]string{
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + wpNS + "\n  labels: {" + ambientLabel + ": ambient}\n",
		"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: wecho, namespace: " + wpNS + "}\nautomountServiceAccountToken: false\n",
		wpEchoPod("v1"), wpEchoPod("v2"),
		wpServiceYAML("echo", "app: wecho"),
		wpServiceYAML("echo-v1", "app: wecho, version: v1"),
		wpServiceYAML("echo-v2", "app: wecho, version: v2"),
	}, "---\n")
}

// wpEnv is what the waypoint tests share.
type wpEnv struct {
	e      *meshEnv
	client corev1.Pod
	vip    string // the echo Service's cluster IP
}

func (w *wpEnv) url(path string) string {
	return "http://" + net.JoinHostPort(w.vip, "8080") + path
}

// summary runs the echo client in the client pod with --summary.
func (w *wpEnv) summary(ctx context.Context, t *testing.T, args ...string) echo.Summary {
	t.Helper()
	out, err := w.e.exec(ctx, w.client.Namespace, w.client.Name, append([]string{"echo", "client", "--summary"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var s echo.Summary
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		t.Fatalf("echo client summary %q: %v", out, err)
	}
	return s
}

// result runs one echo client call and returns its Result (an HTTP
// status other than 2xx is a result, not an error).
func (w *wpEnv) result(ctx context.Context, t *testing.T, args ...string) (echo.Result, error) {
	t.Helper()
	out, err := w.e.exec(ctx, w.client.Namespace, w.client.Name, append([]string{"echo", "client"}, args...)...)
	if err != nil {
		return echo.Result{}, err
	}
	var r echo.Result
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		return echo.Result{}, fmt.Errorf("echo client output %q: %w", out, err)
	}
	return r, nil
}

// gateway reads the waypoint Gateway.
func (w *wpEnv) gateway(ctx context.Context) (*gatewayv1.Gateway, error) {
	out, err := w.e.kubectl(ctx, nil, "-n", wpNS, "get", "gateway", wpName, "-o", "json")
	if err != nil {
		return nil, err
	}
	var gw gatewayv1.Gateway
	if err := json.Unmarshal([]byte(out), &gw); err != nil {
		return nil, fmt.Errorf("decode gateway: %w", err)
	}
	return &gw, nil
}

// waypointPod is the ready waypoint pod.
func (w *wpEnv) waypointPod(ctx context.Context, t *testing.T) corev1.Pod {
	t.Helper()
	return w.e.readyPods(ctx, t, wpNS, "gateway.networking.k8s.io/gateway-name="+wpName, 1)[0]
}

// waypointMetrics scrapes the waypoint's Prometheus endpoint.
func (w *wpEnv) waypointMetrics(ctx context.Context, t *testing.T) string {
	t.Helper()
	p := w.waypointPod(ctx, t)
	out, err := w.e.exec(ctx, p.Namespace, p.Name, "curl", "-sf", "--max-time", "5", "http://127.0.0.1:15020/metrics")
	if err != nil {
		t.Fatalf("waypoint metrics: %v", err)
	}
	return out
}

// requests counts the waypoint's istio_requests_total for the echo
// Service with extra labels.
func (w *wpEnv) requests(ctx context.Context, t *testing.T, labels ...string) float64 {
	t.Helper()
	return counter(w.waypointMetrics(ctx, t), "istio_requests_total", append([]string{`destination_service="` + wpService + `"`}, labels...)...)
}

// inboundFrom sums, over every ztunnel, the inbound (destination-reported)
// HBONE connections from principal.
func (w *wpEnv) inboundFrom(ctx context.Context, t *testing.T, principal string) float64 {
	t.Helper()
	var n float64
	for _, z := range w.e.readyPods(ctx, t, "weft-system", "app=ztunnel", 2) {
		n += w.e.opened(ctx, t, z, `source_principal="`+principal+`"`, `reporter="destination"`, `destination_workload_namespace="`+wpNS+`"`)
	}
	return n
}

// podState is what must not change when the waypoint comes and goes.
func podState(p corev1.Pod) string {
	var restarts int32
	for _, c := range p.Status.ContainerStatuses {
		restarts += c.RestartCount
	}
	return fmt.Sprintf("%s uid=%s restarts=%d", p.Name, p.UID, restarts)
}

func (w *wpEnv) appStates(ctx context.Context, t *testing.T) []string {
	t.Helper()
	var s []string
	for _, sel := range []string{"app=wclient", "app=wecho"} {
		for _, p := range w.e.readyPods(ctx, t, wpNS, sel, 1) {
			s = append(s, podState(p))
		}
	}
	return s
}

// TestWaypoint deploys a waypoint with weftctl, checks that the
// namespace's service traffic goes through it, exercises the L7 features
// (subtests, in order), and removes it again.
func TestWaypoint(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	e.applyYAML(ctx, t, wpApps())
	client := e.startPod(ctx, t, wpNS, "wclient", "wclient", "", nil)
	e.readyPods(ctx, t, wpNS, "app=wecho", 2)
	e.labelNamespace(ctx, t, wpNS, "ambient")
	svc, err := e.cs.CoreV1().Services(wpNS).Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := &wpEnv{e: e, client: client, vip: svc.Spec.ClusterIP}
	clientPrincipal := wpTrust + "wclient"

	// L4 first: the server's ztunnel sees the client itself.
	before := w.inboundFrom(ctx, t, clientPrincipal)
	if s := w.summary(ctx, t, "--url", w.url("/l4"), "--count", "5"); s.Status["200"] != 5 {
		t.Fatalf("L4 calls before the waypoint: %+v", s)
	}
	if after := w.inboundFrom(ctx, t, clientPrincipal); after <= before {
		t.Fatalf("L4: no inbound HBONE connection from %s counted (%v → %v)", clientPrincipal, before, after)
	}
	apps := w.appStates(ctx, t)

	// Deploy: weftctl applies the Gateway, enrolls the namespace and
	// waits for Programmed.
	start := time.Now()
	out, code := w.weftctlWait(ctx, t, "waypoint", "apply", "-n", wpNS, "--enroll-namespace", "--wait", "--timeout", wpDeployed.String())
	if code != 0 {
		w.dumpWaypoint(ctx, t)
		t.Fatalf("weftctl waypoint apply --wait: exit %d\n%s", code, out)
	}
	t.Logf("weftctl waypoint apply --wait: programmed after %s\n%s", time.Since(start).Round(100*time.Millisecond), out)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = e.kubectl(ctx, nil, "-n", wpNS, "delete", "gateway", wpName, "--ignore-not-found")
	})
	w.checkDeployed(ctx, t)

	// Traffic to the echo Service now goes client → ztunnel → waypoint →
	// ztunnel → echo.
	wpPrincipal := wpTrust + wpName
	eventually(ctx, t, wpSettle, "calls to echo counted by the waypoint", func() error {
		before := w.requests(ctx, t)
		if s := w.summary(ctx, t, "--url", w.url("/via"), "--count", "10"); s.Status["200"] != 10 {
			return fmt.Errorf("calls through the waypoint: %+v", s)
		}
		if got := w.requests(ctx, t) - before; got < 10 {
			return fmt.Errorf("waypoint counted %v of 10 requests", got)
		}
		return nil
	})
	if n := w.inboundFrom(ctx, t, wpPrincipal); n == 0 {
		t.Errorf("no server-side ztunnel counted an HBONE connection from the waypoint (%s)", wpPrincipal)
	}

	for _, st := range []struct {
		name string
		f    func(context.Context, *testing.T)
	}{
		{"l7-policy", w.testL7Policy},
		{"split-90-10", w.testSplit},
		{"header-match", w.testHeaderMatch},
		{"retry", w.testRetry},
		{"timeout", w.testTimeout},
		{"circuit-breaking", w.testCircuitBreaking},
		{"rate-limit", w.testRateLimit},
		{"grpc", w.testGRPC},
		{"tcp", w.testTCP},
		{"pod-addressed", w.testPodAddressed},
		{"metrics", w.testMetrics},
		{"page-release", w.testPageRelease},
	} {
		t.Run(st.name, func(t *testing.T) { st.f(ctx, t) })
	}

	// Removal: the Gateway goes, its objects are garbage-collected, and
	// the namespace is back to L4 with the same pods.
	if out, code := e.weftctl(ctx, t, "waypoint", "delete", wpName, "-n", wpNS); code != 0 {
		t.Fatalf("weftctl waypoint delete: exit %d\n%s", code, out)
	}
	eventually(ctx, t, 2*time.Minute, "waypoint Deployment, Service and ServiceAccount garbage-collected", func() error {
		if _, err := e.cs.AppsV1().Deployments(wpNS).Get(ctx, wpName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("deployment still there (err %v)", err)
		}
		if _, err := e.cs.CoreV1().Services(wpNS).Get(ctx, wpName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("service still there (err %v)", err)
		}
		if _, err := e.cs.CoreV1().ServiceAccounts(wpNS).Get(ctx, wpName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("service account still there (err %v)", err)
		}
		return nil
	})
	eventually(ctx, t, wpSettle, "back to L4: the server sees the client as its HBONE peer", func() error {
		before := w.inboundFrom(ctx, t, clientPrincipal)
		if s := w.summary(ctx, t, "--url", w.url("/l4-again"), "--count", "5"); s.Status["200"] != 5 {
			return fmt.Errorf("calls after removal: %+v", s)
		}
		// One kept-alive connection carries the five calls.
		if after := w.inboundFrom(ctx, t, clientPrincipal); after <= before {
			return fmt.Errorf("server-side ztunnels counted no new connection from the client (%v)", after)
		}
		return nil
	})
	if got := w.appStates(ctx, t); strings.Join(got, "\n") != strings.Join(apps, "\n") {
		t.Errorf("apps restarted or replaced:\nbefore %v\nafter  %v", apps, got)
	}
}

// weftctlWait is meshEnv.weftctl for commands that wait longer than its
// minute.
func (w *wpEnv) weftctlWait(ctx context.Context, t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := filepath.Join(w.e.root, "_output", "bin", "weftctl")
	ctx, cancel := context.WithTimeout(ctx, wpDeployed+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", w.e.c.Kubeconfig}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("weftctl %v: %v\n%s (run `make build`?)", args, err, out)
		return "", -1
	}
}

// checkDeployed checks what the controller made of the Gateway.
func (w *wpEnv) checkDeployed(ctx context.Context, t *testing.T) {
	t.Helper()
	gw, err := w.gateway(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"Accepted", "Programmed"} {
		if cond := meta.FindStatusCondition(gw.Status.Conditions, c); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("Gateway condition %s = %+v", c, cond)
		}
	}
	svc, err := w.e.cs.CoreV1().Services(wpNS).Get(ctx, wpName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("waypoint Service: %v", err)
	}
	if len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != svc.Spec.ClusterIP {
		t.Errorf("Gateway addresses %+v, want the Service's cluster IP %s", gw.Status.Addresses, svc.Spec.ClusterIP)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprint(p.Port))
	}
	if got := strings.Join(ports, ","); got != "15008,15021,15020" {
		t.Errorf("waypoint Service ports %s", got)
	}
	dep, err := w.e.cs.AppsV1().Deployments(wpNS).Get(ctx, wpName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("waypoint Deployment: %v", err)
	}
	if ref := metav1.GetControllerOf(dep); ref == nil || ref.Kind != "Gateway" || ref.UID != gw.UID {
		t.Errorf("Deployment owner %+v, want Gateway %s", ref, gw.UID)
	}
	p := w.waypointPod(ctx, t)
	if p.Labels[ambientLabel] != "none" {
		t.Errorf("waypoint pod %s=%q, want none", ambientLabel, p.Labels[ambientLabel])
	}
	out, code := w.e.weftctl(ctx, t, "waypoint", "list", "-n", wpNS)
	if code != 0 || !hasFieldsLine(out, wpNS, wpName, "default", "True") {
		t.Errorf("weftctl waypoint list: exit %d\n%s", code, out)
	}
	out, code = w.e.weftctl(ctx, t, "waypoint", "status", "-n", wpNS)
	if code != 0 || !hasFieldsPrefix(out, wpNS, wpName, "True", "Programmed", "Programmed") {
		t.Errorf("weftctl waypoint status: exit %d\n%s", code, out)
	}
	ns, err := w.e.cs.CoreV1().Namespaces().Get(ctx, wpNS, metav1.GetOptions{})
	if err != nil || ns.Labels["istio.io/use-waypoint"] != wpName {
		t.Errorf("namespace %s not enrolled to the waypoint: %v %v", wpNS, ns.GetLabels(), err)
	}
}

// hasFieldsLine reports whether some line of out has exactly these
// whitespace-separated fields.
func hasFieldsLine(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

// hasFieldsPrefix reports whether some line of out starts with these
// whitespace-separated fields.
func hasFieldsPrefix(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

// dumpWaypoint logs what helps when the waypoint does not come up.
func (w *wpEnv) dumpWaypoint(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"-n", wpNS, "get", "gateway,deploy,svc,sa,pods", "-o", "wide"},
		{"-n", wpNS, "get", "gateway", wpName, "-o", "yaml"},
		{"-n", wpNS, "logs", "-l", "gateway.networking.k8s.io/gateway-name=" + wpName, "--tail=60"},
		{"-n", "weft-system", "logs", "-l", "app=istiod-lite", "--tail=40", "--prefix"},
	} {
		out, err := w.e.kubectl(ctx, nil, args...)
		t.Logf("kubectl %s (err %v):\n%s", strings.Join(args, " "), err, out)
	}
}
