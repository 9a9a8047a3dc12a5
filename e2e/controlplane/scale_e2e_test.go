//go:build e2e

package controlplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/istiod-lite/scale"
)

// Istio's istiod in ambient mode with 5,000 pods and 1,000 services on
// this kind of machine (issue 6): the baseline the ratios compare with.
const (
	istiodRSSMB    = 265
	istiodAnonMB   = 172
	istiodReadyS   = 1.9
	istiodCPUPerMS = 1.5 // ms of CPU per pod ingested
)

// BenchmarkScale is issue 6's scale benchmark on a lab: it creates
// WEFT_SCALE_PODS pods (default 5000, status set through the status
// subresource, bound to a node object the test keeps alive but no kubelet
// runs), 1000 services in 50 namespaces, cold-starts the istiod-lite binary
// (_output/bin) on the host against the lab's API server with them present,
// connects 10 xDS clients and times pod changes to every client's ACK. It
// runs once whatever b.N is; use -benchtime 1x. WEFT_ISTIOD_LITE names
// another istiod-lite binary to measure; WEFT_SCALE_PROFILE names a
// directory to save istiod-lite's profiles in: a CPU profile and an
// execution trace of its first seconds, and heap and goroutine profiles at
// the steady-state measurement (this enables its loopback debug server,
// and profiling slows the cold start down). WEFT_SCALE_LOG_LEVEL sets
// istiod-lite's log level (default warn).
func BenchmarkScale(b *testing.B) {
	// The benchmark needs only the API server: no CoreDNS wait.
	e := &env{l: lab.Start(b, lab.Options{Nodes: 2, SkipDNS: true})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root := e.l.Cluster().Root
	bin := filepath.Join(root, "_output", "bin", "istiod-lite")
	if v := os.Getenv("WEFT_ISTIOD_LITE"); v != "" { // a binary to compare
		bin = v
	}
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("istiod-lite binary (make build): %v", err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", e.l.Kubeconfig())
	if err != nil {
		b.Fatal(err)
	}
	rc.QPS, rc.Burst = 1000, 2000
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	const node = "scale-node"
	stopNode := fakeNode(ctx, b, kc, node)
	defer stopNode()

	cfg := scale.Config{Kube: kc, Node: node, Pods: envInt("WEFT_SCALE_PODS", 5000), Services: envInt("WEFT_SCALE_SERVICES", 1000),
		Namespaces: envInt("WEFT_SCALE_NAMESPACES", 50), Clients: envInt("WEFT_SCALE_CLIENTS", 10), Changes: envInt("WEFT_SCALE_CHANGES", 200)}
	// The admission plugin wants each namespace's default ServiceAccount,
	// which the controller manager adds shortly after the namespace.
	start := time.Now()
	for i := range cfg.Namespaces {
		ns := "weft-scale-" + strconv.Itoa(i)
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			b.Fatal(err)
		}
	}
	for i := range cfg.Namespaces {
		ns := "weft-scale-" + strconv.Itoa(i)
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := kc.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			b.Fatalf("no default ServiceAccount in %s: %v", ns, err)
		}
	}
	took, err := scale.Create(ctx, cfg)
	took += time.Since(start) - took
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d pods (with status), %d services in %d namespaces in %s", cfg.Pods, cfg.Services, cfg.Namespaces, took.Round(time.Millisecond))
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}

	b.ResetTimer()
	for range b.N {
		xdsAddr, tlsAddr, monAddr := freePort(b), freePort(b), freePort(b)
		debugAddr := ""
		profDir := os.Getenv("WEFT_SCALE_PROFILE")
		if profDir != "" {
			debugAddr = freePort(b)
		}
		level := os.Getenv("WEFT_SCALE_LOG_LEVEL")
		if level == "" {
			level = "warn"
		}
		cmd := exec.Command(bin, "--kubeconfig", e.l.Kubeconfig(), "--namespace", "istio-system", "--xds-address", tlsAddr,
			"--plaintext-xds-address", xdsAddr, "--monitoring-address", monAddr, "--debug-address="+debugAddr, "--log-level="+level, "--log-format=text")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		startupProfiled := make(chan struct{})
		if profDir != "" {
			go func() {
				defer close(startupProfiled)
				profileStartup(ctx, b, debugAddr, profDir)
			}()
		} else {
			close(startupProfiled)
		}
		cold, stop, err := scale.ColdStart(ctx, cmd, "http://"+monAddr+"/ready", time.Minute)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		cfg.XDSAddress = xdsAddr
		rep, err := scale.Measure(ctx, cfg)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		<-startupProfiled
		steady, err := scale.MeasureProcess(cmd.Process.Pid)
		if profDir != "" && err == nil {
			for _, p := range []string{"heap", "goroutine"} {
				if perr := saveProfile(ctx, "http://"+debugAddr+"/debug/pprof/"+p, filepath.Join(profDir, p+".pb.gz")); perr != nil {
					b.Logf("profile %s: %v", p, perr)
				}
			}
		}
		stop()
		if err != nil {
			b.Fatal(err)
		}
		perPodMS := float64(cold.AtReady.CPU) / 1e6 / float64(cfg.Pods)
		rss, anon := float64(steady.RSS)/(1<<20), float64(steady.AnonRSS)/(1<<20)
		b.Logf("cold start to ready %s; CPU at ready %s (%.3f ms/pod); resident at ready %.1f MB (anon %.1f)",
			cold.Ready.Round(time.Millisecond), cold.AtReady.CPU.Round(time.Millisecond), perPodMS,
			float64(cold.AtReady.RSS)/(1<<20), float64(cold.AtReady.AnonRSS)/(1<<20))
		b.Logf("with %d clients: resident %.1f MB, anon %.1f MB; %s", cfg.Clients, rss, anon, rep)
		b.ReportMetric(cold.Ready.Seconds(), "ready-s")
		b.ReportMetric(perPodMS, "cpu-ms/pod")
		b.ReportMetric(rss, "rss-MB")
		b.ReportMetric(anon, "anon-MB")
		b.ReportMetric(float64(rep.InitialSync)/1e6, "initial-sync-ms")
		b.ReportMetric(float64(rep.P50)/1e6, "p50-ms")
		b.ReportMetric(float64(rep.P99)/1e6, "p99-ms")
		// Beside the baseline: istiod's figures over ours.
		b.ReportMetric(istiodRSSMB/rss, "x-less-rss-than-istiod")
		b.ReportMetric(istiodAnonMB/anon, "x-less-anon-than-istiod")
		b.ReportMetric(istiodReadyS/cold.Ready.Seconds(), "x-faster-ready-than-istiod")
		b.ReportMetric(istiodCPUPerMS/perPodMS, "x-less-cpu-per-pod-than-istiod")
		for _, miss := range []struct {
			bad  bool
			what string
		}{
			{steady.RSS > 90<<20, "resident > 90 MB"}, {steady.AnonRSS > 35<<20, "anonymous > 35 MB"},
			{cold.Ready > time.Second, "ready > 1 s after a cold start"}, {perPodMS > 0.5, "CPU > 0.5 ms per pod"},
			{rep.P99 > 200*time.Millisecond, "p99 propagation > 200 ms"},
		} {
			if miss.bad {
				b.Logf("target MISSED: %s", miss.what)
			}
		}
	}
}

// fakeNode registers a Node that no kubelet runs and keeps its Ready
// condition and Lease fresh, so that the pods bound to it are neither
// garbage-collected as orphans nor marked not Ready by the node lifecycle
// controller. The returned function stops the heartbeat.
func fakeNode(ctx context.Context, b *testing.B, kc kubernetes.Interface, name string) func() {
	b.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "weft.dev/scale", Effect: corev1.TaintEffectNoSchedule}}}}
	if _, err := kc.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	beat := func() error {
		now := metav1.Now()
		n, err := kc.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now}}
		if _, err := kc.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
		secs := int32(40)
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &secs, RenewTime: &metav1.MicroTime{Time: now.Time}}}
		leases := kc.CoordinationV1().Leases(corev1.NamespaceNodeLease)
		old, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, l, metav1.CreateOptions{})
			return err
		} else if err != nil {
			return err
		}
		old.Spec = l.Spec
		_, err = leases.Update(ctx, old, metav1.UpdateOptions{})
		return err
	}
	if err := beat(); err != nil {
		b.Fatalf("fake node %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := beat(); err != nil && ctx.Err() == nil {
					b.Logf("fake node %s heartbeat: %v", name, err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// profileStartup waits for istiod-lite's debug server to listen, then
// saves a CPU profile and an execution trace of the next 3 seconds.
func profileStartup(ctx context.Context, b *testing.B, debugAddr, dir string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", debugAddr, time.Second)
		if err == nil {
			_ = c.Close() // only a probe
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.Logf("startup profile: debug server never listened: %v", err)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := saveProfile(ctx, "http://"+debugAddr+"/debug/pprof/trace?seconds=3", filepath.Join(dir, "startup.trace")); err != nil {
			b.Logf("startup trace: %v", err)
		}
	}()
	if err := saveProfile(ctx, "http://"+debugAddr+"/debug/pprof/profile?seconds=3", filepath.Join(dir, "startup-cpu.pb.gz")); err != nil {
		b.Logf("startup cpu profile: %v", err)
	}
	<-done
}

// saveProfile fetches a pprof profile from url into file.
func saveProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below; a close error adds nothing
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func freePort(b testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return addr
}
