package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/e2e/loadgen"
)

// The benchmark's namespaces: not enrolled, enrolled in the L4 mesh, and
// enrolled with a waypoint.
const (
	nsDirect   = "bench-direct"
	nsMesh     = "bench-mesh"
	nsWaypoint = "bench-wp"

	ambientLabel     = "istio.io/dataplane-mode"
	redirectionAnnot = "ambient.istio.io/redirection"

	// Ports: the server's three listeners, the nginx hop, and the relay
	// pair's client-side (tls-out) and server-side (tls-in) listeners.
	portHTTP, portSource, portHold = 8080, 9100, 9200
	portNginx                      = 8081
	relayOutBase, relayInBase      = 17901, 17911
)

// Path names: each is a way from a client pod on the first node to a
// server pod on the second.
const (
	pathDirect   = "direct"
	pathMesh     = "mesh"
	pathWaypoint = "waypoint"
	pathRelay    = "tls-relay"
	pathNginx    = "nginx"
	// pathNginxMesh is nginx enrolled in the mesh, where the waypoint
	// stands: client → ztunnel → HBONE → nginx's ztunnel → nginx →
	// nginx's ztunnel → HBONE → ztunnel → server; its hop is measured
	// against the mesh path, as the waypoint's is.
	pathNginxMesh = "nginx-mesh"
)

// path is one way to the server: the client's network namespace and the
// addresses of the server's listeners as seen from there.
type path struct {
	Name               string
	Netns              string
	HTTP, Source, Hold string
}

// topology is what deploy set up.
type topology struct {
	client, server lab.NodePlan
	paths          map[string]path
	waypointNode   string
	// nginxNetns is each nginx's network namespace by role (roleNginx,
	// roleNginxMesh); empty when nginx is not installed.
	nginxNetns map[string]string
}

// nginxes are the two places nginx stands, both on the waypoint's node:
// unenrolled (plaintext, reached from the direct client) and enrolled
// (reached from the mesh client, through the mesh).
var nginxes = []struct {
	role, path, ns string
	enrolled       bool
}{{roleNginx, pathNginx, nsDirect, false}, {roleNginxMesh, pathNginxMesh, nsMesh, true}}

func podYAML(ns, name, node, app string, hostNetwork bool, args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  labels: {app: %s}\nspec:\n", name, ns, app)
	fmt.Fprintf(&b, "  nodeName: %s\n  hostNetwork: %t\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 1\n", node, hostNetwork)
	b.WriteString("  containers:\n  - name: load\n    image: weft/weft-load:dev\n    command: [/usr/local/bin/weft-load]\n    args: [")
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", a)
	}
	b.WriteString("]\n    volumeMounts: [{name: run, mountPath: /var/run/weft-bench}]\n")
	if app == "bench-server" {
		fmt.Fprintf(&b, "    readinessProbe: {httpGet: {path: /healthz, port: %d}, periodSeconds: 1}\n", portHTTP)
	}
	b.WriteString("  volumes: [{name: run, emptyDir: {}}]\n")
	return b.String()
}

// appYAML is a namespace with a client pod on node a, a server pod on node
// b and the Service "server" in front of it.
func appYAML(ns string, enrolled bool, a, b string) string {
	labels := "{}"
	if enrolled {
		labels = "{" + ambientLabel + ": ambient}"
	}
	return strings.Join([]string{
		fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: %s\n", ns, labels),
		podYAML(ns, "client", a, "bench-client", false, "sleep"),
		podYAML(ns, "server", b, "bench-server", false, "serve",
			fmt.Sprintf("--http=:%d", portHTTP), fmt.Sprintf("--source=:%d", portSource), fmt.Sprintf("--hold=:%d", portHold)),
		fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: server, namespace: %s}
spec:
  selector: {app: bench-server}
  ports:
  - {name: http, port: %d, targetPort: %d, appProtocol: http}
  - {name: source, port: %d, targetPort: %d, appProtocol: tcp}
  - {name: hold, port: %d, targetPort: %d, appProtocol: tcp}
`, ns, portHTTP, portHTTP, portSource, portSource, portHold, portHold),
	}, "---\n")
}

// deploy creates the namespaces, pods and Services, the waypoint, the
// relay pair and the nginx hop, and waits until all are ready.
func (b *bench) deploy(ctx context.Context) error {
	nodes := b.c.Plan.Nodes
	if len(nodes) < 2 {
		return fmt.Errorf("the benchmark needs 2 nodes, the lab has %d", len(nodes))
	}
	t := &topology{client: nodes[0], server: nodes[1], paths: map[string]path{}}
	b.topo = t
	a, s := t.client.Name, t.server.Name
	y := strings.Join([]string{appYAML(nsDirect, false, a, s), appYAML(nsMesh, true, a, s), appYAML(nsWaypoint, true, a, s)}, "---\n")
	if _, err := b.c.Kubectl(ctx, strings.NewReader(y), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("deploy bench apps: %w", err)
	}
	for _, ns := range []string{nsDirect, nsMesh, nsWaypoint} {
		for _, name := range []string{"client", "server"} {
			if err := b.waitPod(ctx, ns, name, ns != nsDirect); err != nil {
				return err
			}
		}
	}
	// The waypoint, as a user deploys it.
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if out, err := b.weftctl(wctx, "waypoint", "apply", "-n", nsWaypoint, "--enroll-namespace", "--wait", "--timeout", "3m"); err != nil {
		return fmt.Errorf("weftctl waypoint apply: %w\n%s", err, out)
	}
	wp, err := b.cs.CoreV1().Pods(nsWaypoint).List(ctx, metav1.ListOptions{LabelSelector: "gateway.networking.k8s.io/gateway-name"})
	if err != nil || len(wp.Items) == 0 {
		return fmt.Errorf("find the waypoint pod: %v (%d pods)", err, len(wp.Items))
	}
	t.waypointNode = wp.Items[0].Spec.NodeName

	serverIP, err := b.podIP(ctx, nsDirect, "server")
	if err != nil {
		return err
	}
	var more []string
	var out, in []string
	for i, port := range []int{portHTTP, portSource, portHold} {
		out = append(out, fmt.Sprintf("--tls-out=:%d=%s", relayOutBase+i, net.JoinHostPort(t.server.IP.String(), fmt.Sprint(relayInBase+i))))
		in = append(in, fmt.Sprintf("--tls-in=:%d=%s", relayInBase+i, net.JoinHostPort(serverIP, fmt.Sprint(port))))
	}
	more = append(more, podYAML(nsDirect, "relay-client-side", a, "bench-relay", true, append([]string{"relay"}, out...)...),
		podYAML(nsDirect, "relay-server-side", s, "bench-relay", true, append([]string{"relay"}, in...)...))
	svcIP := map[string]string{}
	for _, ns := range []string{nsDirect, nsMesh, nsWaypoint} {
		svc, err := b.cs.CoreV1().Services(ns).Get(ctx, "server", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get service %s/server: %w", ns, err)
		}
		svcIP[ns] = svc.Spec.ClusterIP
	}
	hasNginx := fileExists(loadgen.NginxBin)
	if hasNginx {
		for _, n := range nginxes {
			more = append(more, podYAML(n.ns, "nginx", t.waypointNode, "bench-nginx", false, "nginx",
				fmt.Sprintf("--port=%d", portNginx), "--upstream="+net.JoinHostPort(svcIP[n.ns], fmt.Sprint(portHTTP)), "--dir=/var/run/weft-bench/nginx"))
		}
	}
	if _, err := b.c.Kubectl(ctx, strings.NewReader(strings.Join(more, "---\n")), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("deploy relays and nginx: %w", err)
	}
	for _, name := range []string{"relay-client-side", "relay-server-side"} {
		if err := b.waitPod(ctx, nsDirect, name, false); err != nil {
			return err
		}
	}

	for _, ns := range []struct{ path, ns string }{{pathDirect, nsDirect}, {pathMesh, nsMesh}, {pathWaypoint, nsWaypoint}} {
		netns, err := lab.PodNetns(ctx, b.cs, b.c.Plan.Name, ns.ns, "client")
		if err != nil {
			return err
		}
		ip := svcIP[ns.ns]
		t.paths[ns.path] = path{Name: ns.path, Netns: netns, HTTP: hostPort(ip, portHTTP), Source: hostPort(ip, portSource), Hold: hostPort(ip, portHold)}
	}
	direct := t.paths[pathDirect]
	nodeA := t.client.IP.String()
	t.paths[pathRelay] = path{Name: pathRelay, Netns: direct.Netns, HTTP: hostPort(nodeA, relayOutBase), Source: hostPort(nodeA, relayOutBase+1), Hold: hostPort(nodeA, relayOutBase+2)}
	if hasNginx {
		t.nginxNetns = map[string]string{}
		for _, n := range nginxes {
			if err := b.waitPod(ctx, n.ns, "nginx", n.enrolled); err != nil {
				return err
			}
			ip, err := b.podIP(ctx, n.ns, "nginx")
			if err != nil {
				return err
			}
			if t.nginxNetns[n.role], err = lab.PodNetns(ctx, b.cs, b.c.Plan.Name, n.ns, "nginx"); err != nil {
				return err
			}
			client := direct.Netns
			if n.enrolled {
				client = t.paths[pathMesh].Netns
			}
			t.paths[n.path] = path{Name: n.path, Netns: client, HTTP: hostPort(ip, portNginx)}
		}
	}
	return b.checkPaths(ctx)
}

// checkPaths sends a little traffic down every path and checks the
// waypoint saw its share, so that no row measures a path that is not what
// it says.
func (b *bench) checkPaths(ctx context.Context) error {
	for _, name := range b.pathNames() {
		p := b.topo.paths[name]
		var last error
		err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
			var res loadgen.LatencyResult
			last = b.load(ctx, p, &res, "latency", "--addr="+p.HTTP, "--rate=50", "--conns=1", "--warmup=0s", "--duration=200ms")
			if last == nil && res.Errors > 0 {
				last = fmt.Errorf("%d errors: %s", res.Errors, res.FirstErr)
			}
			return last == nil, nil
		})
		if err != nil {
			return fmt.Errorf("path %s (%s) does not answer: %w", name, p.HTTP, last)
		}
	}
	n, err := b.waypointRequests(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("the waypoint counted no requests after traffic to %s: the waypoint path is not going through it", b.topo.paths[pathWaypoint].HTTP)
	}
	b.log.Info("every path answers; the waypoint counted requests", "requests", n)
	return nil
}

// pathNames lists the deployed paths, baseline first.
func (b *bench) pathNames() []string {
	names := []string{pathDirect, pathMesh, pathWaypoint, pathRelay}
	if _, ok := b.topo.paths[pathNginx]; ok {
		names = append(names, pathNginx, pathNginxMesh)
	}
	return names
}

// waitPod waits for pod ns/name to be Ready and, when enrolled, to carry
// the redirection annotation.
func (b *bench) waitPod(ctx context.Context, ns, name string, enrolled bool) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := b.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = string(p.Status.Phase)
		if !podReady(p) {
			return false, nil
		}
		if enrolled && p.Annotations[redirectionAnnot] != "enabled" {
			last = "ready, not yet redirected"
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("pod %s/%s not ready (%s): %w", ns, name, last, err)
	}
	return nil
}

func (b *bench) podIP(ctx context.Context, ns, name string) (string, error) {
	p, err := b.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	if p.Status.PodIP == "" {
		return "", fmt.Errorf("pod %s/%s has no IP", ns, name)
	}
	return p.Status.PodIP, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
