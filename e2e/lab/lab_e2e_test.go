//go:build e2e

package lab_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/weftmesh/weft/e2e/echo"
	"github.com/weftmesh/weft/e2e/lab"
)

const echoManifest = `
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: demo
spec:
  replicas: 4
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels: {app: echo}
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: weft/echo:latest
        args: ["serve", "--http", ":8080", "--tcp", ":9000", "--grpc", ":7070"]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: SERVICE_ACCOUNT, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
        ports:
        - {name: http, containerPort: 8080}
        - {name: tcp, containerPort: 9000}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 8080, targetPort: 8080}
  - {name: tcp, port: 9000, targetPort: 9000}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: hostpath
  namespace: demo
spec:
  selector:
    matchLabels: {app: hostpath}
  template:
    metadata:
      labels: {app: hostpath}
    spec:
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: weft/echo:latest
        args: ["serve", "--http", ":18080", "--tcp", "", "--grpc", ""]
        volumeMounts:
        - {name: marker, mountPath: /node-marker}
      volumes:
      - name: marker
        hostPath: {path: /var/lib/weft-lab-marker, type: DirectoryOrCreate}
`

func TestLab(t *testing.T) {
	start := time.Now()
	l := lab.Start(t, lab.Options{Nodes: 2})
	t.Logf("lab %s: nodes Ready and CoreDNS available %s after Start (binaries built)", l.Name(), time.Since(start).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := l.Clientset()

	t.Run("nodes Ready", func(t *testing.T) {
		out, err := l.Kubectl("get", "nodes", "--no-headers")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes() {
			if !strings.Contains(out, n.Name+"   Ready") {
				t.Errorf("kubectl get nodes does not show %s Ready:\n%s", n.Name, out)
			}
		}
	})

	// Each node's root gets a marker the hostPath DaemonSet must see.
	for _, n := range l.Nodes() {
		dir := filepath.Join(l.Cluster().Dir, "nodes", n.Name, "root", "var", "lib", "weft-lab-marker")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "node"), []byte(n.Name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Apply(echoManifest); err != nil {
		t.Fatal(err)
	}
	pods := waitPodsReady(ctx, t, l, "demo", "app=echo", 4)
	byNode := map[string][]corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}

	t.Run("pods spread with IPs from their node's CIDR", func(t *testing.T) {
		for _, n := range l.Nodes() {
			if len(byNode[n.Name]) == 0 {
				t.Errorf("no echo pod on %s", n.Name)
			}
			for _, p := range byNode[n.Name] {
				ip, err := netip.ParseAddr(p.Status.PodIP)
				if err != nil || !n.PodCIDR.Contains(ip) {
					t.Errorf("pod %s on %s has IP %q outside %s", p.Name, n.Name, p.Status.PodIP, n.PodCIDR)
				}
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	n1, n2 := l.Nodes()[0].Name, l.Nodes()[1].Name
	client, server := byNode[n1][0], byNode[n2][0]

	t.Run("pod to pod across nodes", func(t *testing.T) {
		rep := echoCall(ctx, t, l, client, "--url", "http://"+net.JoinHostPort(server.Status.PodIP, "8080")+"/cross")
		if rep.Pod.Name != server.Name {
			t.Errorf("answered by %q, want %q", rep.Pod.Name, server.Name)
		}
		if host, _, _ := net.SplitHostPort(rep.Source); host != client.Status.PodIP {
			t.Errorf("server saw source %s, want the client pod IP %s (no masquerade)", rep.Source, client.Status.PodIP)
		}
		tcp := echoCall(ctx, t, l, client, "--tcp", net.JoinHostPort(server.Status.PodIP, "9000"))
		if tcp.Pod.Name != server.Name || tcp.Protocol != "tcp" {
			t.Errorf("tcp answered by %+v", tcp)
		}
		g := echoCall(ctx, t, l, client, "--grpc", net.JoinHostPort(server.Status.PodIP, "7070"))
		if g.Pod.Name != server.Name || g.Protocol != "grpc" {
			t.Errorf("grpc answered by %+v", g)
		}
	})

	svc, err := cs.CoreV1().Services("demo").Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Service ClusterIP through kube-proxy", func(t *testing.T) {
		// kube-proxy programs the endpoints within its sync period.
		url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "8080") + "/svc"
		seen := map[string]bool{}
		var last error
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			out, err := l.Exec(ctx, client.Namespace, client.Name, "echo", "client", "--url", url, "--count", "4")
			if last = err; err != nil {
				return false, nil
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				seen[parseResult(t, line).Pod.Name] = true
			}
			return len(seen) >= 2, nil
		})
		if err != nil {
			t.Errorf("calls to the ClusterIP reached only %v (last error: %v)", seen, last)
		}
	})

	t.Run("Service by DNS name", func(t *testing.T) {
		// kubectl exec runs in the container, with the pod's resolv.conf.
		for _, host := range []string{"echo.demo.svc.cluster.local", "echo.demo", "echo"} {
			out, err := l.Kubectl("exec", "-n", "demo", client.Name, "--", l.Cluster().Bins.Echo, "client", "--url", "http://"+host+":8080/dns", "--h2c")
			if err != nil {
				t.Errorf("%s: %v", host, err)
				continue
			}
			if rep := parseResult(t, out); rep.Pod.Namespace != "demo" {
				t.Errorf("%s answered by %+v", host, rep.Pod)
			}
		}
	})

	t.Run("hostNetwork DaemonSet sees its node root", func(t *testing.T) {
		dsPods := waitPodsReady(ctx, t, l, "demo", "app=hostpath", len(l.Nodes()))
		for _, p := range dsPods {
			var node lab.NodePlan
			for _, n := range l.Nodes() {
				if n.Name == p.Spec.NodeName {
					node = n
				}
			}
			if p.Status.PodIP != node.IP.String() {
				t.Errorf("hostNetwork pod %s has IP %s, want node IP %s", p.Name, p.Status.PodIP, node.IP)
			}
			out, err := l.Kubectl("exec", "-n", "demo", p.Name, "--", "cat", "/node-marker/node")
			if err != nil {
				t.Errorf("read marker in %s: %v", p.Name, err)
			} else if out != node.Name {
				t.Errorf("pod %s on %s sees marker %q", p.Name, node.Name, out)
			}
		}
	})

	t.Run("projected token passes TokenReview", func(t *testing.T) {
		tok, err := l.Kubectl("exec", "-n", "demo", client.Name, "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: strings.TrimSpace(tok)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Status.Authenticated || tr.Status.User.Username != "system:serviceaccount:demo:default" {
			t.Errorf("TokenReview = %+v", tr.Status)
		}
	})

	t.Run("kubectl logs", func(t *testing.T) {
		out, err := l.Kubectl("logs", "-n", "demo", server.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "serving HTTP/1.1 and h2c") {
			t.Errorf("logs of %s lack the start line:\n%s", server.Name, out)
		}
	})

	t.Run("kubectl port-forward", func(t *testing.T) {
		portForward(ctx, t, l, server)
	})

	t.Run("deleting pods runs CNI DEL and removes their netns", func(t *testing.T) {
		before := podNetns(t, l)
		if _, err := l.Kubectl("delete", "deployment", "-n", "demo", "echo", "--wait=true"); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			left, err := cs.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
			return err == nil && len(left.Items) == 0, nil
		})
		if err != nil {
			t.Fatalf("echo pods not gone: %v", err)
		}
		var after []string
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			after = podNetns(t, l)
			return len(after) <= len(before)-4, nil
		})
		if err != nil {
			t.Errorf("pod netns before %v, after %v: want 4 fewer", before, after)
		}
		for _, p := range pods {
			for _, n := range l.Nodes() {
				ipFile := filepath.Join(l.Cluster().Dir, "nodes", n.Name, "kubelet", "ipam", "lab", p.Status.PodIP)
				if _, err := os.Stat(ipFile); err == nil {
					t.Errorf("host-local still holds %s (no CNI DEL?)", ipFile)
				}
			}
		}
	})

	rss, procs, err := lab.ResidentBytes(l.Cluster().Root, l.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab resident memory: %.0f MiB in %d processes", float64(rss)/(1<<20), procs)

	t.Run("teardown leaves nothing", func(t *testing.T) {
		name, dir := l.Name(), l.Cluster().Dir
		if err := l.Cluster().Close(); err != nil {
			t.Fatal(err)
		}
		assertNothingLeft(t, name, dir)
	})
}

// TestCLI runs weft-lab up, status and down as a user would, kills the
// supervisor of a second lab and checks down still removes everything.
func TestCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root")
	}
	root, err := lab.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	bins, err := lab.EnsureBinaries(ctx, root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := lab.NewName()
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bins.WeftLab, append(args, "--name", name, "--root", root)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = run("down") })

	start := time.Now()
	out, err := run("up", "--nodes", "2")
	if err != nil {
		t.Fatalf("weft-lab up: %v\n%s", err, out)
	}
	t.Logf("weft-lab up: %s (wall %s)", strings.TrimSpace(out), time.Since(start).Round(100*time.Millisecond))
	if out, err := run("status"); err != nil {
		t.Errorf("weft-lab status: %v\n%s", err, out)
	}
	rss, procs, err := lab.ResidentBytes(root, name)
	if err == nil {
		t.Logf("lab resident memory: %.0f MiB in %d processes", float64(rss)/(1<<20), procs)
	}

	// A killed supervisor leaves its processes; down finds them by prefix.
	s, err := lab.ReadState(lab.StateDir(root, name))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := os.FindProcess(s.SupervisorPID); err == nil {
		_ = p.Kill()
	}
	if out, err := run("down"); err != nil {
		t.Fatalf("weft-lab down: %v\n%s", err, out)
	}
	assertNothingLeft(t, name, lab.StateDir(root, name))
}

func waitPodsReady(ctx context.Context, t *testing.T, l *lab.Lab, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := l.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				pods = append(pods, p)
			}
		}
		return len(pods) == n, nil
	})
	if err != nil {
		out, _ := l.Kubectl("get", "pods", "-A", "-o", "wide")
		ev, _ := l.Kubectl("get", "events", "-A")
		t.Fatalf("%d pods %s in %s not Ready: %v\n%s\n%s", n, selector, ns, err, out, ev)
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

func echoCall(ctx context.Context, t *testing.T, l *lab.Lab, from corev1.Pod, args ...string) echo.Reply {
	t.Helper()
	out, err := l.Exec(ctx, from.Namespace, from.Name, append([]string{"echo", "client"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return parseResult(t, out)
}

func parseResult(t *testing.T, out string) echo.Reply {
	t.Helper()
	var res echo.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Reply == nil {
		t.Fatalf("echo client output %q: %v", out, err)
	}
	return *res.Reply
}

func portForward(ctx context.Context, t *testing.T, l *lab.Lab, pod corev1.Pod) {
	t.Helper()
	cmd := exec.CommandContext(ctx, l.Cluster().Bins.Kubectl, "--kubeconfig", l.Kubeconfig(), "port-forward", "--address", "127.0.0.1", "-n", pod.Namespace, "pod/"+pod.Name, ":8080")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// "Forwarding from 127.0.0.1:PORT -> 8080"
	sc := bufio.NewScanner(stdout)
	var addr string
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "Forwarding" {
			addr = f[2]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if addr == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("kubectl port-forward printed no address: %s", stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/pf")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var rep echo.Reply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Pod.Name != pod.Name {
		t.Errorf("port-forward reached %q, want %q", rep.Pod.Name, pod.Name)
	}
}

func podNetns(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.Name()+"-pod") {
			out = append(out, e.Name())
		}
	}
	return out
}

func assertNothingLeft(t *testing.T, name, dir string) {
	t.Helper()
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), name+"-") {
		t.Errorf("netns left:\n%s", out)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); strings.Contains(string(out), name+"-") {
		t.Errorf("links left:\n%s", out)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), dir) || strings.Contains(string(b), "/netns/"+name+"-") {
		t.Errorf("mounts left under %s or /run/netns/%s-*", dir, name)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("state dir %s left", dir)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir+"/") {
			t.Errorf("process %s left: %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}

}

// TestFailedStartCleansUp starts a lab whose kubelets cannot run and checks
// that the failed start removes everything it made.
func TestFailedStartCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root")
	}
	root, err := lab.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	bins, err := lab.EnsureBinaries(ctx, root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := lab.NewName()
	c, err := lab.Up(ctx, lab.Options{Name: name, Nodes: 1, Root: root, Binaries: &bins, Shim: "/bin/false", SkipDNS: true})
	if err == nil {
		if cerr := c.Close(); cerr != nil {
			t.Errorf("close: %v", cerr)
		}
		t.Fatal("Up with a kubelet that exits at once succeeded")
	}
	t.Logf("Up failed as expected: %v", err)
	assertNothingLeft(t, name, lab.StateDir(root, name))
}
