package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/weftmesh/weft/cni/agentapi"
	"github.com/weftmesh/weft/cni/iptables"
	"github.com/weftmesh/weft/pkg/netns"
)

// fakeNet stands in for pods' network namespaces: each namespace (named by
// the pod IP or netns path that leads to it) has its own recording iptables
// and routes. Handles are real but all point at the test's own namespace,
// which needs no privileges.
type fakeNet struct {
	mu      sync.Mutex
	labels  map[*netns.NetNS]string
	tables  map[string]*iptables.Recorder
	routes  map[string]*iptables.RouteRecorder
	running map[string]bool // pod IPs with a live namespace
	pathIP  map[string]string
	finds   int // calls of Find: scans of the node
}

func newFakeNet() *fakeNet {
	return &fakeNet{
		labels: map[*netns.NetNS]string{}, tables: map[string]*iptables.Recorder{},
		routes: map[string]*iptables.RouteRecorder{}, running: map[string]bool{}, pathIP: map[string]string{},
	}
}

func (f *fakeNet) handle(label string) (*netns.NetNS, error) {
	ns, err := netns.Open("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.labels[ns] = label
	if f.tables[label] == nil {
		f.tables[label] = iptables.NewRecorder()
		f.routes[label] = &iptables.RouteRecorder{}
	}
	return ns, nil
}

// Find implements netnsFinder.
func (f *fakeNet) Find(ips []string) (*netns.NetNS, error) {
	f.mu.Lock()
	f.finds++
	var found string
	for _, ip := range ips {
		if f.running[ip] {
			found = ip
		}
	}
	f.mu.Unlock()
	if found == "" {
		return nil, ErrNetnsNotFound
	}
	return f.handle(found)
}

// Holds implements netnsFinder.
func (f *fakeNet) Holds(ns *netns.NetNS, ips []string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.labels[ns]
	for _, ip := range ips {
		if f.running[ip] && (l == ip || f.pathIP[l] == ip) {
			return true
		}
	}
	return false
}

func (f *fakeNet) open(path string) (*netns.NetNS, error) {
	f.mu.Lock()
	ip := f.pathIP[path]
	f.mu.Unlock()
	if ip == "" {
		return nil, errors.New("no such netns")
	}
	return f.handle(ip)
}

func (f *fakeNet) inPod(ns *netns.NetNS) iptables.InPod {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.labels[ns]
	return iptables.InPod{Tables: f.tables[l], Routes: f.routes[l]}
}

func (f *fakeNet) Apply(ns *netns.NetNS) error  { return f.inPod(ns).Apply() }
func (f *fakeNet) Remove(ns *netns.NetNS) error { return f.inPod(ns).Remove() }
func (f *fakeNet) Check(ns *netns.NetNS) ([]string, error) {
	return f.inPod(ns).Drift()
}

func (f *fakeNet) dump(label string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tables[label] == nil {
		return ""
	}
	return f.tables[label].Dump() + f.routes[label].Dump()
}

// goldenPodRules is what one enrolled pod's namespace holds.
func goldenPodRules(t *testing.T) string {
	t.Helper()
	tb, rt := iptables.NewRecorder(), &iptables.RouteRecorder{}
	if err := (iptables.InPod{Tables: tb, Routes: rt}).Apply(); err != nil {
		t.Fatal(err)
	}
	return tb.Dump() + rt.Dump()
}

// fakeZtunnel records ZDS traffic.
type fakeZtunnel struct {
	mu        sync.Mutex
	connected int
	adds      []string
	dels      []string
}

func (z *fakeZtunnel) Add(ctx context.Context, w workload) error {
	z.mu.Lock()
	if z.connected == 0 {
		z.mu.Unlock()
		<-ctx.Done()
		return ErrNoZtunnel
	}
	defer z.mu.Unlock()
	z.adds = append(z.adds, w.UID)
	return nil
}

func (z *fakeZtunnel) Del(_ context.Context, uid string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.dels = append(z.dels, uid)
}

func (z *fakeZtunnel) Connected() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.connected
}

func (z *fakeZtunnel) got() (adds, dels []string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.adds...), append([]string(nil), z.dels...)
}

type harness struct {
	t      *testing.T
	kube   *fake.Clientset
	net    *fakeNet
	zt     *fakeZtunnel
	probes *iptables.Recorder
	events *record.FakeRecorder
	agent  *Agent
	cfg    Config
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, objs ...any) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t: t, net: newFakeNet(), zt: &fakeZtunnel{connected: 1}, probes: iptables.NewRecorder(),
		events: record.NewFakeRecorder(100),
		cfg: Config{
			NodeName: "node-1", CNISocket: filepath.Join(dir, "cni.sock"),
			EnrollmentFile: filepath.Join(dir, "enrollment.json"), ZDSSocket: filepath.Join(dir, "zds.sock"),
			AddTimeout: 500 * time.Millisecond, ResyncInterval: time.Hour,
		},
	}
	var robjs []any
	robjs = append(robjs, objs...)
	h.kube = fake.NewClientset()
	for _, o := range robjs {
		switch o := o.(type) {
		case *corev1.Pod:
			if _, err := h.kube.CoreV1().Pods(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case *corev1.Namespace:
			if _, err := h.kube.CoreV1().Namespaces().Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.agent = newAgent(h.cfg, h.kube, slog.New(slog.DiscardHandler), deps{
		rules: h.net, probes: iptables.ProbeSNAT{Tables: h.probes}, finder: h.net, open: h.net.open,
		zt: h.zt, events: h.events,
	})
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.agent.Run(ctx) }()
	h.t.Cleanup(h.stop)
	h.eventually("informers synced", func() bool { return h.agent.synced.Load() })
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) pod(ns, name string) *corev1.Pod {
	p, err := h.kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func namespace(name string, ambient bool) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ambient {
		ns.Labels = map[string]string{LabelDataplaneMode: DataplaneModeAmbient}
	}
	return ns
}

func runningPod(ns, name, uid, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec:       corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "sa-" + name, Containers: []corev1.Container{{Name: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func TestLabelAndUnlabelRunningPod(t *testing.T) {
	h := newHarness(t, namespace("demo", false), runningPod("demo", "web", "uid-web", "10.244.1.5"))
	h.net.running["10.244.1.5"] = true
	h.start()
	time.Sleep(50 * time.Millisecond)
	if d := h.net.dump("10.244.1.5"); d != "" {
		t.Fatalf("rules in a pod that is not enrolled:\n%s", d)
	}

	// Label the namespace: the running pod is enrolled without a restart.
	start := time.Now()
	if _, err := h.kube.CoreV1().Namespaces().Update(context.Background(), namespace("demo", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("annotation", func() bool {
		return h.pod("demo", "web").Annotations[AnnotationRedirection] == RedirectionEnabled
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("enrollment took %v, want < 2s", took)
	}
	if diff := cmp.Diff(goldenPodRules(t), h.net.dump("10.244.1.5")); diff != "" {
		t.Fatalf("pod rules (-want +got):\n%s", diff)
	}
	if adds, _ := h.zt.got(); !cmp.Equal(adds, []string{"uid-web"}) {
		t.Fatalf("ztunnel adds = %v", adds)
	}
	if !strings.Contains(h.probes.Dump(), "-d 10.244.1.5/32") {
		t.Fatalf("no probe snat:\n%s", h.probes.Dump())
	}
	e, err := agentapi.ReadEnrollment(h.cfg.EnrollmentFile)
	if err != nil || !e.NamespaceEnrolled("demo") {
		t.Fatalf("enrollment file: %+v %v", e, err)
	}

	// Unlabel: everything is reversed.
	if _, err := h.kube.CoreV1().Namespaces().Update(context.Background(), namespace("demo", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("annotation removed", func() bool {
		_, ok := h.pod("demo", "web").Annotations[AnnotationRedirection]
		return !ok
	})
	if d := h.net.dump("10.244.1.5"); d != "" {
		t.Fatalf("rules left after unenroll:\n%s", d)
	}
	if _, dels := h.zt.got(); !cmp.Equal(dels, []string{"uid-web"}) {
		t.Fatalf("ztunnel dels = %v", dels)
	}
	if strings.Contains(h.probes.Dump(), "10.244.1.5") {
		t.Fatalf("probe snat left:\n%s", h.probes.Dump())
	}
	h.eventually("enrollment file updated", func() bool {
		e, _ := agentapi.ReadEnrollment(h.cfg.EnrollmentFile)
		return !e.NamespaceEnrolled("demo")
	})
}

func TestPodOptOutAndDelete(t *testing.T) {
	optOut := runningPod("demo", "opt", "uid-opt", "10.244.1.6")
	optOut.Labels = map[string]string{LabelDataplaneMode: DataplaneModeNone}
	h := newHarness(t, namespace("demo", true), runningPod("demo", "web", "uid-web", "10.244.1.5"), optOut)
	h.net.running["10.244.1.5"] = true
	h.net.running["10.244.1.6"] = true
	h.start()
	h.eventually("web enrolled", func() bool { return h.agent.state("uid-web") != nil && h.agent.isAcked(h.agent.state("uid-web")) })
	time.Sleep(50 * time.Millisecond)
	if d := h.net.dump("10.244.1.6"); d != "" {
		t.Fatalf("opted-out pod got rules:\n%s", d)
	}
	if err := h.kube.CoreV1().Pods("demo").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("web forgotten", func() bool { return h.agent.state("uid-web") == nil })
	if d := h.net.dump("10.244.1.5"); d != "" {
		t.Fatalf("rules left after delete:\n%s", d)
	}
}

func TestCNIAdd(t *testing.T) {
	pending := runningPod("demo", "new", "uid-new", "")
	pending.Status = corev1.PodStatus{Phase: corev1.PodPending}
	other := runningPod("plain", "other", "uid-other", "")
	other.Status = corev1.PodStatus{Phase: corev1.PodPending}
	h := newHarness(t, namespace("demo", true), namespace("plain", false), pending, other)
	h.net.pathIP["/var/run/netns/new"] = "10.244.1.7"
	h.net.pathIP["/var/run/netns/other"] = "10.244.1.8"
	h.start()
	c := agentapi.NewClient(h.cfg.CNISocket)
	ctx := context.Background()

	resp, err := c.Add(ctx, agentapi.PodRequest{ContainerID: "c1", Netns: "/var/run/netns/new", IfName: "eth0", PodName: "new", PodNamespace: "demo", IPs: []string{"10.244.1.7"}})
	if err != nil || !resp.Enrolled {
		t.Fatalf("Add = %+v, %v", resp, err)
	}
	if diff := cmp.Diff(goldenPodRules(t), h.net.dump("10.244.1.7")); diff != "" {
		t.Fatalf("pod rules (-want +got):\n%s", diff)
	}
	if h.pod("demo", "new").Annotations[AnnotationRedirection] != RedirectionEnabled {
		t.Fatal("not annotated")
	}
	if err := c.Check(ctx, agentapi.PodRequest{ContainerID: "c1", PodName: "new", PodNamespace: "demo"}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// ADD again (a retried ADD) changes nothing.
	before := h.net.tables["10.244.1.7"].Ops
	if _, err := c.Add(ctx, agentapi.PodRequest{ContainerID: "c1", Netns: "/var/run/netns/new", PodName: "new", PodNamespace: "demo", IPs: []string{"10.244.1.7"}}); err != nil {
		t.Fatal(err)
	}
	if after := h.net.tables["10.244.1.7"].Ops; len(after) != len(before) {
		t.Fatalf("second ADD wrote rules: %v", after[len(before):])
	}

	resp, err = c.Add(ctx, agentapi.PodRequest{ContainerID: "c2", Netns: "/var/run/netns/other", PodName: "other", PodNamespace: "plain"})
	if err != nil || resp.Enrolled {
		t.Fatalf("Add(not enrolled) = %+v, %v", resp, err)
	}
	if d := h.net.dump("10.244.1.8"); d != "" {
		t.Fatalf("rules for a pod outside the mesh:\n%s", d)
	}

	if err := c.Del(ctx, agentapi.PodRequest{ContainerID: "c1", PodName: "new", PodNamespace: "demo"}); err != nil {
		t.Fatal(err)
	}
	if d := h.net.dump("10.244.1.7"); d != "" {
		t.Fatalf("rules left after DEL:\n%s", d)
	}
	// A netns path the agent cannot open falls back to finding the pod by IP.
	h.net.mu.Lock()
	h.net.running["10.244.1.7"] = true
	h.net.mu.Unlock()
	resp, err = c.Add(ctx, agentapi.PodRequest{ContainerID: "c3", Netns: "/elsewhere/netns", PodName: "new", PodNamespace: "demo", IPs: []string{"10.244.1.7"}})
	if err != nil || !resp.Enrolled || h.net.dump("10.244.1.7") == "" {
		t.Fatalf("Add via ip fallback = %+v, %v", resp, err)
	}
	if _, err := c.Add(ctx, agentapi.PodRequest{PodName: "x"}); err == nil {
		t.Fatal("invalid request accepted")
	}
}

func TestCNIAddNoZtunnel(t *testing.T) {
	pending := runningPod("demo", "new", "uid-new", "")
	pending.Status = corev1.PodStatus{}
	h := newHarness(t, namespace("demo", true), pending)
	h.zt.connected = 0
	h.net.pathIP["/var/run/netns/new"] = "10.244.1.7"
	h.start()
	if err := h.agent.Ready(); err == nil || !errors.Is(err, ErrNoZtunnel) {
		t.Fatalf("Ready = %v, want no ztunnel", err)
	}
	c := agentapi.NewClient(h.cfg.CNISocket)
	_, err := c.Add(context.Background(), agentapi.PodRequest{ContainerID: "c1", Netns: "/var/run/netns/new", PodName: "new", PodNamespace: "demo", IPs: []string{"10.244.1.7"}})
	if err == nil || !strings.Contains(err.Error(), "no ztunnel connected") {
		t.Fatalf("Add err = %v", err)
	}
	select {
	case ev := <-h.events.Events:
		if !strings.Contains(ev, "ZtunnelNotConnected") {
			t.Fatalf("event %q", ev)
		}
	case <-time.After(time.Second):
		t.Fatal("no event for the pod")
	}
}

func TestRestartAdoptsAndCleansUp(t *testing.T) {
	kept := runningPod("demo", "web", "uid-web", "10.244.1.5")
	kept.Annotations = map[string]string{AnnotationRedirection: RedirectionEnabled}
	stale := runningPod("plain", "old", "uid-old", "10.244.1.9")
	stale.Annotations = map[string]string{AnnotationRedirection: RedirectionEnabled}
	h := newHarness(t, namespace("demo", true), namespace("plain", false), kept, stale)
	h.net.running["10.244.1.5"] = true
	h.net.running["10.244.1.9"] = true
	// An earlier agent left rules in both pods and probe SNAT for them
	// and for a pod deleted since.
	for _, ip := range []string{"10.244.1.5", "10.244.1.9"} {
		ns, _ := h.net.handle(ip)
		if err := h.net.Apply(ns); err != nil {
			t.Fatal(err)
		}
		_ = ns.Close()
	}
	ps := iptables.ProbeSNAT{Tables: h.probes}
	_ = ps.Ensure()
	_ = ps.Add("10.244.1.5", "uid-web")
	_ = ps.Add("10.244.1.9", "uid-old")
	_ = ps.Add("10.244.1.99", "uid-gone")
	webOps := len(h.net.tables["10.244.1.5"].Ops)

	h.start()
	h.eventually("web adopted", func() bool { return h.agent.state("uid-web") != nil && h.agent.isAcked(h.agent.state("uid-web")) })
	h.eventually("stale pod cleaned", func() bool { return h.net.dump("10.244.1.9") == "" })
	if diff := cmp.Diff(goldenPodRules(t), h.net.dump("10.244.1.5")); diff != "" {
		t.Fatalf("adopted pod rules (-want +got):\n%s", diff)
	}
	if ops := h.net.tables["10.244.1.5"].Ops[webOps:]; len(ops) != 0 {
		t.Fatalf("adopting rewrote rules: %v", ops)
	}
	h.eventually("stale annotation removed", func() bool {
		_, ok := h.pod("plain", "old").Annotations[AnnotationRedirection]
		return !ok
	})
	h.agent.cleanupProbes()
	got, _ := ps.List()
	if diff := cmp.Diff(map[string]string{"uid-web": "10.244.1.5"}, got); diff != "" {
		t.Fatalf("probe snat after cleanup (-want +got):\n%s", diff)
	}
}

func TestShouldEnroll(t *testing.T) {
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := runningPod("demo", "p", "u", "10.0.0.1")
		mut(p)
		return p
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		ns   *corev1.Namespace
		want bool
	}{
		{"namespace label", pod(func(*corev1.Pod) {}), namespace("demo", true), true},
		{"no label", pod(func(*corev1.Pod) {}), namespace("demo", false), false},
		{"unknown namespace", pod(func(*corev1.Pod) {}), nil, false},
		{"pod label", pod(func(p *corev1.Pod) { p.Labels = map[string]string{LabelDataplaneMode: "ambient"} }), namespace("demo", false), true},
		{"pod opt-out", pod(func(p *corev1.Pod) { p.Labels = map[string]string{LabelDataplaneMode: "none"} }), namespace("demo", true), false},
		{"host network", pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), namespace("demo", true), false},
		{"sidecar", pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy"})
		}), namespace("demo", true), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := shouldEnroll(tc.pod, tc.ns); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
