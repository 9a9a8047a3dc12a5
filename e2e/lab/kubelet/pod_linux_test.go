package kubelet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	utilexec "k8s.io/utils/exec"
	"k8s.io/utils/ptr"
)

// nodeNetworker runs the CNI chain from inside a test "node" netns, as
// kubelet-lite would when started inside the node's namespace.
type nodeNetworker struct {
	node string
	cni  *cniNetwork
}

func (n *nodeNetworker) Add(ctx context.Context, p podNetwork) (ips []string, conf []byte, err error) {
	err = inNetns(n.node, func() error {
		var err error
		ips, conf, err = n.cni.Add(ctx, p)
		return err
	})
	return
}

func (n *nodeNetworker) Check(ctx context.Context, p podNetwork, conf []byte) error {
	return inNetns(n.node, func() error { return n.cni.Check(ctx, p, conf) })
}

func (n *nodeNetworker) Del(ctx context.Context, p podNetwork, conf []byte) error {
	return inNetns(n.node, func() error { return n.cni.Del(ctx, p, conf) })
}

type testLab struct {
	t      *testing.T
	client *fake.Clientset
	k      *kubelet
	dir    string
}

func startTestKubelet(t *testing.T) *testLab {
	t.Helper()
	requireRoot(t)
	bin := cniBinDir(t)
	dir := t.TempDir()
	node := newTestNetns(t, dir, "wt-kubelet-node-"+randSuffix())
	confDir := filepath.Join(dir, "root/etc/cni/net.d")
	// No loopback plugin: kubelet-lite brings lo up itself, as runtimes do.
	writeConflistWith(t, confDir, "10-ptp.conflist", filepath.Join(dir, "state/ipam"), "10.250.9.0/24", "")
	client := fake.NewClientset(
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []v1.ServicePort{{Name: "https", Port: 443}}}},
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "demo"}, Data: map[string]string{"ca.crt": "CA"}},
	)
	client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authv1.TokenRequest).DeepCopy()
		tr.Status = authv1.TokenRequestStatus{Token: "token-for-" + strings.Join(tr.Spec.Audiences, ","), ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Hour))}
		return true, tr, nil
	})
	cfg := &Config{
		NodeName: "n1", NodeIP: "192.168.250.2", RootDir: filepath.Join(dir, "root"), StateDir: filepath.Join(dir, "state"),
		CNIConfDir: confDir, CNIBinDir: bin, ShimPath: shimPath(t), ClusterDNS: "10.96.0.10",
		Images: map[string]string{"test/sh": "/bin/sh", "test/python": "/usr/bin/python3"},
	}
	cfg.setDefaults()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	k := newKubelet(cfg, client, &nodeNetworker{node: node, cni: newCNINetwork(confDir, bin, filepath.Join(cfg.StateDir, "cni-cache"), nil)}, log)
	if err := k.setupNetnsView(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { k.pods.run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		k.removeState()
		if ns, _ := filepath.Glob(filepath.Join(cfg.StateDir, "netns", "*")); len(ns) > 0 {
			t.Errorf("netns left behind: %v", ns)
		}
	})
	return &testLab{t: t, client: client, k: k, dir: dir}
}

func (l *testLab) waitPod(name string, what string, ok func(*v1.Pod) bool) *v1.Pod {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var p *v1.Pod
	for time.Now().Before(deadline) {
		var err error
		p, err = l.client.CoreV1().Pods("demo").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && ok(p) {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Fatalf("pod %s never became %s; status: %+v", name, what, p.Status)
	return nil
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}

func TestPodLifecycle(t *testing.T) {
	l := startTestKubelet(t)
	ctx := context.Background()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo", UID: "0a1b2c3d-0000-0000-0000-000000000001"},
		Spec: v1.PodSpec{
			NodeName: "n1", ServiceAccountName: "web", TerminationGracePeriodSeconds: ptr.To[int64](2),
			InitContainers: []v1.Container{{Name: "init", Image: "test/sh", Command: []string{"sh", "-c", "echo init > /data/init.txt"},
				VolumeMounts: []v1.VolumeMount{{Name: "work", MountPath: "/data"}}}},
			Containers: []v1.Container{{
				Name: "web", Image: "test/python:1",
				Command:        []string{"python3", "-u", "-c", "import http.server,os;print('serving', os.environ['POD_IP'], open('/data/init.txt').read().strip(), open('/var/run/secrets/kubernetes.io/serviceaccount/token').read());http.server.HTTPServer(('0.0.0.0',8080),http.server.SimpleHTTPRequestHandler).serve_forever()"},
				Env:            []v1.EnvVar{{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
				Ports:          []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
				LivenessProbe:  &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1},
				VolumeMounts: []v1.VolumeMount{
					{Name: "work", MountPath: "/data"},
					{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
				},
			}},
			Volumes: []v1.Volume{
				{Name: "work", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
				{Name: "kube-api-access", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
					{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "istio-ca"}},
					{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []v1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
			},
		},
	}
	if _, err := l.client.CoreV1().Pods("demo").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := l.waitPod("web", "Ready", podReady)
	if !strings.HasPrefix(p.Status.PodIP, "10.250.9.") || p.Status.HostIP != "192.168.250.2" || p.Status.Phase != v1.PodRunning {
		t.Errorf("status: ip=%s host=%s phase=%s", p.Status.PodIP, p.Status.HostIP, p.Status.Phase)
	}

	srv := &apiServer{k: l.k, log: slog.New(slog.DiscardHandler)}
	h := httptest.NewServer(srv.handler())
	defer h.Close()
	resp, err := http.Get(h.URL + "/containerLogs/demo/web/web?tailLines=50")
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if want := "serving " + p.Status.PodIP + " init token-for-istio-ca"; !strings.Contains(string(logs), want) {
		t.Errorf("logs = %q, want %q", logs, want)
	}

	var out strings.Builder
	ex := &executor{s: srv}
	err = ex.ExecInContainer(ctx, "demo/web", "", "web", []string{"sh", "-c", "cat /etc/resolv.conf /var/run/secrets/kubernetes.io/serviceaccount/namespace; ip -o link show lo; test -x /usr/local/bin/python3 && echo image-binary"}, nil, nopCloser{&out}, nopCloser{&out}, false, nil, 0)
	if err != nil || !strings.Contains(out.String(), "search demo.svc.cluster.local") || !strings.Contains(out.String(), "demo") || !strings.Contains(out.String(), "LOOPBACK,UP") || !strings.Contains(out.String(), "image-binary") {
		t.Errorf("exec: %v %q", err, out.String())
	}

	var ttyOut strings.Builder
	err = ex.ExecInContainer(ctx, "demo/web", "", "web", []string{"sh", "-c", "test -t 0 && echo isatty; exit 4"}, strings.NewReader(""), nopCloser{&ttyOut}, nil, true, nil, 0)
	if code := exitCode(err); code != 4 || !strings.Contains(ttyOut.String(), "isatty") {
		t.Errorf("tty exec: %v %q", err, ttyOut.String())
	}

	a, b := net.Pipe()
	forwarded := make(chan error, 1)
	go func() {
		forwarded <- (&forwarder{s: srv, ns: "demo", pod: "web"}).PortForward(ctx, "demo/web", "", 8080, a)
	}()
	if _, err := io.WriteString(b, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Errorf("port-forward request: %v", err)
	}
	reply, _ := io.ReadAll(b)
	if !strings.HasPrefix(string(reply), "HTTP/1.0 200") {
		t.Errorf("port-forward reply = %.60q", reply)
	}
	if err := <-forwarded; err != nil {
		t.Errorf("PortForward: %v", err)
	}

	netns := netnsPath(l.k.cfg, string(pod.UID))
	if _, err := os.Stat(netns); err != nil {
		t.Fatalf("pod netns: %v", err)
	}
	// Graceful deletion: the kubelet stops the pod and finalises it.
	p.DeletionTimestamp = ptr.To(metav1.Now())
	p.DeletionGracePeriodSeconds = ptr.To[int64](2)
	if _, err := l.client.CoreV1().Pods("demo").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := l.client.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod never finalised")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(netns); err == nil {
		t.Error("netns still exists after deletion")
	}
}

func TestPodFailures(t *testing.T) {
	l := startTestKubelet(t)
	ctx := context.Background()
	mk := func(name, image string, cmd ...string) {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", UID: types.UID("uid-" + name + "-" + randSuffix())},
			Spec: v1.PodSpec{NodeName: "n1", Containers: []v1.Container{{Name: "c", Image: image, Command: cmd}}}}
		if _, err := l.client.CoreV1().Pods("demo").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("unknown", "weft/nope:1")
	mk("crash", "test/sh", "sh", "-c", "echo boom; exit 1")
	l.waitPod("unknown", "ErrImagePull", func(p *v1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ErrImagePull" &&
			strings.Contains(cs[0].State.Waiting.Message, "weft/nope")
	})
	l.waitPod("crash", "CrashLoopBackOff", func(p *v1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].State.Waiting != nil &&
			cs[0].State.Waiting.Reason == "CrashLoopBackOff" && cs[0].LastTerminationState.Terminated != nil
	})
	evs, _ := l.client.CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
	var reasons []string
	for _, e := range evs.Items {
		reasons = append(reasons, e.Reason)
	}
	if s := strings.Join(reasons, ","); !strings.Contains(s, "Failed") || !strings.Contains(s, "BackOff") {
		t.Errorf("events = %s", s)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func exitCode(err error) int {
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

func TestSidecarInit(t *testing.T) {
	l := startTestKubelet(t)
	always := v1.ContainerRestartPolicyAlways
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "side", Namespace: "demo", UID: types.UID("uid-side-" + randSuffix())},
		Spec: v1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: ptr.To[int64](1),
			InitContainers: []v1.Container{
				{Name: "sidecar", Image: "test/sh", RestartPolicy: &always, Command: []string{"sh", "-c", "exec sleep 300"}},
				{Name: "init", Image: "test/sh", Command: []string{"true"}},
			},
			Containers: []v1.Container{{Name: "main", Image: "test/sh", Command: []string{"sh", "-c", "exec sleep 300"}}},
		},
	}
	if _, err := l.client.CoreV1().Pods("demo").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := l.waitPod("side", "Ready", podReady)
	if ics := got.Status.InitContainerStatuses; len(ics) != 2 || ics[0].State.Running == nil || ics[1].State.Terminated == nil {
		t.Errorf("init container statuses: %+v", ics)
	}
}

func TestPreStopHook(t *testing.T) {
	l := startTestKubelet(t)
	ctx := context.Background()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: "demo", UID: types.UID("uid-hook-" + randSuffix())},
		Spec: v1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []v1.Container{{
				Name: "main", Image: "test/sh", Command: []string{"sh", "-c", "exec sleep 300"},
				Lifecycle:    &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo bye > /shared/prestop"}}}},
				VolumeMounts: []v1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
			}},
			Volumes: []v1.Volume{{Name: "shared", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/shared"}}}},
		},
	}
	if _, err := l.client.CoreV1().Pods("demo").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := l.waitPod("hook", "Ready", podReady)
	got.DeletionTimestamp = ptr.To(metav1.Now())
	if _, err := l.client.CoreV1().Pods("demo").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(l.k.cfg.RootDir, "shared", "prestop")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "bye\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("preStop hook did not run")
		}
	}
}
