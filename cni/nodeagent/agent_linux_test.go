//go:build linux

package nodeagent

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/weftmesh/weft/cni/agentapi"
	"github.com/weftmesh/weft/cni/iptables"
	"github.com/weftmesh/weft/pkg/netns"
)

// TestAgentKernel runs the agent with real rules, the /proc finder and the
// real ZDS server against a pod namespace with a live process: enroll on
// label, survive an agent restart unchanged, clean up on unlabel.
func TestAgentKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and iptables")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
	pod, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pod.Close() }()
	err = pod.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.250.4.5/24")
		return netlink.AddrAdd(v, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	var proc *exec.Cmd
	if err := pod.Do(func() error { proc = exec.Command("sleep", "60"); return proc.Start() }); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
	podIno, _ := pod.Inode()

	mode := iptables.DetectMode(context.Background())
	tables, err := iptables.NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	saveBin := "iptables-" + string(mode) + "-save"
	save := func() string {
		var out []byte
		if err := pod.Do(func() error { var err error; out, err = exec.Command(saveBin).Output(); return err }); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "WEFT_") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}

	dir := t.TempDir()
	cfg := Config{
		NodeName: "node-1", CNISocket: filepath.Join(dir, "cni.sock"), ZDSSocket: filepath.Join(dir, "ztunnel.sock"),
		EnrollmentFile: filepath.Join(dir, "enrollment.json"), AddTimeout: 2 * time.Second, ResyncInterval: time.Hour,
	}
	kube := fake.NewClientset(namespace("demo", true), runningPod("demo", "web", "uid-web", "10.250.4.5"))
	probes := iptables.NewRecorder()
	startAgent := func() (stop func()) {
		a := newAgent(cfg, kube, slog.New(slog.DiscardHandler), deps{
			rules:  iptables.NewRedirector(iptables.Config{}, tables, iptables.NetlinkRoutes{}),
			probes: iptables.ProbeSNAT{Tables: probes}, finder: procFinder{}, open: netns.Open,
			events: record.NewFakeRecorder(100),
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	annotated := func() bool {
		p, err := kube.CoreV1().Pods("demo").Get(context.Background(), "web", metav1.GetOptions{})
		return err == nil && p.Annotations[AnnotationRedirection] == RedirectionEnabled
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dialZ := func() *fakeZtunnelClient {
		var z *fakeZtunnelClient
		waitFor(t, "zds socket", func() bool {
			_, err := os.Stat(cfg.ZDSSocket)
			return err == nil
		})
		z = dialFakeZtunnel(t, ctx, cfg.ZDSSocket)
		return z
	}

	stop := startAgent()
	z := dialZ()
	waitFor(t, "pod enrolled and annotated", annotated)
	waitFor(t, "ztunnel add", func() bool { return slices.Contains(z.received(), "add uid-web") })
	z.mu.Lock()
	gotIno := z.inos["uid-web"]
	z.mu.Unlock()
	if gotIno != podIno {
		t.Fatalf("ztunnel got netns %d, want the pod's %d", gotIno, podIno)
	}
	first := save()
	if !strings.Contains(first, "--to-ports 15001") || !strings.Contains(first, "--to-ports 15006") {
		t.Fatalf("pod rules:\n%s", first)
	}

	// Restart the agent: a new ztunnel connection gets the pod from the
	// snapshot, and the rules are adopted unchanged.
	stop()
	stop = startAgent()
	z2 := dialZ()
	waitFor(t, "snapshot after restart", func() bool {
		return slices.Equal(z2.received(), []string{"add uid-web", "snapshot_sent"})
	})
	if again := save(); again != first {
		t.Fatalf("rules changed across restart:\nbefore:\n%s\nafter:\n%s", first, again)
	}

	// Unlabel: rules go, ztunnel is told.
	if _, err := kube.CoreV1().Namespaces().Update(context.Background(), namespace("demo", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rules removed", func() bool { return save() == "" })
	waitFor(t, "ztunnel del", func() bool { return slices.Contains(z2.received(), "del uid-web") })
	waitFor(t, "annotation removed", func() bool { return !annotated() })
	stop()
}

// TestAgentKernelCNIAdd drives a CNI ADD through the plugin API against
// real rules and the real ZDS server, and reports the ADD→ack latency.
func TestAgentKernelCNIAdd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and iptables")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
	var rnd [4]byte
	crand.Read(rnd[:])
	name := "wt-nodeagent-" + hex.EncodeToString(rnd[:])
	pod, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pod.Close(); _ = netns.RemoveNamed(name) })

	mode := iptables.DetectMode(context.Background())
	tables, err := iptables.NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{
		NodeName: "node-1", CNISocket: filepath.Join(dir, "cni.sock"), ZDSSocket: filepath.Join(dir, "ztunnel.sock"),
		EnrollmentFile: filepath.Join(dir, "enrollment.json"), AddTimeout: 5 * time.Second, ResyncInterval: time.Hour,
	}
	newPod := runningPod("demo", "new", "uid-new", "")
	newPod.Status = corev1.PodStatus{Phase: corev1.PodPending}
	kube := fake.NewClientset(namespace("demo", true), newPod)
	a := newAgent(cfg, kube, slog.New(slog.DiscardHandler), deps{
		rules:  iptables.NewRedirector(iptables.Config{}, tables, iptables.NetlinkRoutes{}),
		probes: iptables.ProbeSNAT{Tables: iptables.NewRecorder()}, finder: procFinder{}, open: netns.Open,
		events: record.NewFakeRecorder(100),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "zds socket", func() bool { _, err := os.Stat(cfg.ZDSSocket); return err == nil })
	z := dialFakeZtunnel(t, ctx, cfg.ZDSSocket)
	waitFor(t, "ztunnel connected", func() bool { return a.zt.Connected() == 1 })

	c := agentapi.NewClient(cfg.CNISocket)
	start := time.Now()
	resp, err := c.Add(ctx, agentapi.PodRequest{ContainerID: "c1", Netns: pod.Path(), IfName: "eth0", PodName: "new", PodNamespace: "demo", IPs: []string{"10.250.5.5"}})
	took := time.Since(start)
	if err != nil || !resp.Enrolled {
		t.Fatalf("Add = %+v, %v", resp, err)
	}
	t.Logf("CNI ADD → rules installed → ztunnel ack: %v", took)
	if !slices.Contains(z.received(), "add uid-new") {
		t.Fatalf("ztunnel got %v", z.received())
	}
	installed, err := iptables.NewRedirector(iptables.Config{}, tables, iptables.NetlinkRoutes{}).Installed(pod)
	if err != nil || !installed {
		t.Fatalf("rules in the pod: %v %v", installed, err)
	}
	if err := c.Del(ctx, agentapi.PodRequest{ContainerID: "c1", Netns: pod.Path(), PodName: "new", PodNamespace: "demo"}); err != nil {
		t.Fatal(err)
	}
	installed, _ = iptables.NewRedirector(iptables.Config{}, tables, iptables.NetlinkRoutes{}).Installed(pod)
	if installed {
		t.Fatal("rules left after DEL")
	}
	waitFor(t, "ztunnel del", func() bool { return slices.Contains(z.received(), "del uid-new") })
}

// TestAgentKernelRuleRepair enrolls a pod with real rules in a throwaway
// namespace, deletes part of them by hand (iptables -F, ip rule del), and
// checks the admin endpoint reports the drift and the periodic check puts
// back exactly the rules that were there.
func TestAgentKernelRuleRepair(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and iptables")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	var rnd [4]byte
	crand.Read(rnd[:])
	name := "wt-nodeagent-" + hex.EncodeToString(rnd[:])
	pod, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pod.Close(); _ = netns.RemoveNamed(name) })
	mode := iptables.DetectMode(context.Background())
	tables, err := iptables.NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	inPod := func(argv ...string) string {
		t.Helper()
		var out []byte
		err := pod.Do(func() error {
			var err error
			out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput()
			return err
		})
		if err != nil {
			t.Fatalf("%v: %v: %s", argv, err, out)
		}
		return string(out)
	}
	saveBin := "iptables-" + string(mode) + "-save"
	save := func() string {
		var lines []string
		for _, l := range strings.Split(inPod(saveBin), "\n") {
			if strings.Contains(l, "WEFT_") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n") + "\n" + inPod("ip", "rule")
	}

	dir := t.TempDir()
	const interval = 1500 * time.Millisecond
	cfg := Config{
		NodeName: "node-1", CNISocket: filepath.Join(dir, "cni.sock"), ZDSSocket: filepath.Join(dir, "ztunnel.sock"),
		EnrollmentFile: filepath.Join(dir, "enrollment.json"), AddTimeout: 5 * time.Second, ResyncInterval: time.Hour,
		RuleCheckInterval: interval,
	}
	newPod := runningPod("demo", "new", "uid-new", "")
	newPod.Status = corev1.PodStatus{Phase: corev1.PodPending}
	kube := fake.NewClientset(namespace("demo", true), newPod)
	events := record.NewFakeRecorder(100)
	a := newAgent(cfg, kube, slog.New(slog.DiscardHandler), deps{
		rules:  iptables.NewRedirector(iptables.Config{}, tables, iptables.NetlinkRoutes{}),
		probes: iptables.ProbeSNAT{Tables: iptables.NewRecorder()}, finder: procFinder{}, open: netns.Open,
		events: events,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "zds socket", func() bool { _, err := os.Stat(cfg.ZDSSocket); return err == nil })
	_ = dialFakeZtunnel(t, ctx, cfg.ZDSSocket)
	waitFor(t, "ztunnel connected", func() bool { return a.zt.Connected() == 1 })
	c := agentapi.NewClient(cfg.CNISocket)
	if resp, err := c.Add(ctx, agentapi.PodRequest{ContainerID: "c1", Netns: pod.Path(), IfName: "eth0", PodName: "new", PodNamespace: "demo", IPs: []string{"10.250.6.5"}}); err != nil || !resp.Enrolled {
		t.Fatalf("Add = %+v, %v", resp, err)
	}
	installed := save()
	if !strings.Contains(installed, "fwmark 0x111/0xfff lookup 100") || !strings.Contains(installed, "--to-ports 15006") {
		t.Fatalf("installed:\n%s", installed)
	}

	// By hand, as someone with a shell on the node would.
	iptablesBin := "iptables-" + string(mode)
	if _, err := exec.LookPath(iptablesBin); err != nil {
		iptablesBin = "iptables"
	}
	inPod(iptablesBin, "-t", "nat", "-F", iptables.ChainPrerouting)
	inPod("ip", "rule", "del", "fwmark", "0x111/0xfff", "lookup", "100")

	rep := getPods(t, a)
	if len(rep.Pods) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	p := rep.Pods[0]
	detected := p.Repairs > 0 // the periodic check may have got there first
	if !p.Rules.InPlace {
		joined := strings.Join(p.Rules.Drift, "\n")
		for _, want := range []string{"ip rule fwmark 0x111/0xfff lookup 100 missing", "nat/WEFT_PRERT: rule missing", "--to-ports 15006"} {
			if !strings.Contains(joined, want) {
				t.Errorf("drift lacks %q:\n%s", want, joined)
			}
		}
		detected = true
	}
	if !detected {
		t.Fatalf("drift not reported: %+v", p)
	}
	waitFor(t, "rules repaired", func() bool { return save() == installed })
	waitFor(t, "report clean", func() bool {
		p := getPods(t, a).Pods[0]
		return p.Rules.InPlace && p.Repairs == 1
	})
	found := false
	for len(events.Events) > 0 {
		if strings.Contains(<-events.Events, "RedirectRulesRepaired") {
			found = true
		}
	}
	if !found {
		t.Error("no RedirectRulesRepaired event")
	}
	if err := c.Del(ctx, agentapi.PodRequest{ContainerID: "c1", Netns: pod.Path(), PodName: "new", PodNamespace: "demo"}); err != nil {
		t.Fatal(err)
	}
}
