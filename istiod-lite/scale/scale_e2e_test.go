//go:build e2e

package scale

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestScaleLab is `make bench`: against the lab's API server it creates
// WEFT_SCALE_PODS pods (default 5000) and services, cold-starts the
// istiod-lite binary WEFT_ISTIOD_LITE with them present, connects
// WEFT_SCALE_CLIENTS xDS clients, and reports memory, CPU, time to ready
// and propagation percentiles against the targets.
//
//	WEFT_KUBECONFIG=... WEFT_ISTIOD_LITE=_output/bin/istiod-lite \
//	  go test -tags e2e -run TestScaleLab -v -timeout 30m ./istiod-lite/scale
func TestScaleLab(t *testing.T) {
	kubeconfig, bin := os.Getenv("WEFT_KUBECONFIG"), os.Getenv("WEFT_ISTIOD_LITE")
	if kubeconfig == "" || bin == "" {
		t.Skip("set WEFT_KUBECONFIG and WEFT_ISTIOD_LITE")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 1000, 2000
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Kube: kc, Pods: envInt("WEFT_SCALE_PODS", 5000), Services: envInt("WEFT_SCALE_SERVICES", 1000),
		Namespaces: envInt("WEFT_SCALE_NAMESPACES", 50), Clients: envInt("WEFT_SCALE_CLIENTS", 10), Changes: envInt("WEFT_SCALE_CHANGES", 200)}
	ctx := context.Background()
	if os.Getenv("WEFT_SCALE_KEEP") == "" {
		defer Cleanup(ctx, cfg)
	}
	if os.Getenv("WEFT_SCALE_SKIP_CREATE") == "" { // objects kept by an earlier run
		took, err := Create(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("created %d pods, %d services in %d namespaces in %s", cfg.Pods, cfg.Services, cfg.Namespaces, took)
	}
	// The CA runs too (it needs its namespace); the benchmark's clients use
	// the plaintext port.
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	xdsAddr, tlsAddr, monAddr := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--xds-address", tlsAddr, "--plaintext-xds-address", xdsAddr,
		"--monitoring-address", monAddr, "--debug-address=", "--log-level=warn")
	// WEFT_ISTIOD_ARGS adds flags (later flags win), e.g.
	// "--debug-address=127.0.0.1:9876" to profile during the run.
	cmd.Args = append(cmd.Args, strings.Fields(os.Getenv("WEFT_ISTIOD_ARGS"))...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// WEFT_ISTIOD_ENV adds environment (e.g. "GOGC=50 GOMEMLIMIT=40MiB") to
	// istiod-lite only.
	cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("WEFT_ISTIOD_ENV"))...)
	cold, stop, err := ColdStart(ctx, cmd, "http://"+monAddr+"/ready", time.Minute)
	defer stop()
	if err != nil {
		t.Fatal(err)
	}
	cfg.XDSAddress = xdsAddr
	rep, err := Measure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := time.ParseDuration(os.Getenv("WEFT_SCALE_SETTLE")); err == nil {
		time.Sleep(d) // let the runtime return the initial pushes' buffers
	}
	steady, err := MeasureProcess(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	perPod := cold.AtReady.CPU / time.Duration(cfg.Pods)
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	t.Logf("cold start to ready: %s (target 1s: %s)", cold.Ready, check(cold.Ready <= time.Second))
	t.Logf("cpu at ready: %s, %.3f ms/pod (target 0.5 ms: %s)", cold.AtReady.CPU, float64(perPod)/1e6, check(perPod <= 500*time.Microsecond))
	t.Logf("resident at ready: %.1f MB (anon %.1f MB)", mb(cold.AtReady.RSS), mb(cold.AtReady.AnonRSS))
	t.Logf("resident with %d clients: %.1f MB (target 90: %s), anon %.1f MB (target 35: %s)", cfg.Clients,
		mb(steady.RSS), check(steady.RSS <= 90<<20), mb(steady.AnonRSS), check(steady.AnonRSS <= 35<<20))
	t.Logf("propagation: %s (p99 target 200ms: %s)", rep, check(rep.P99 <= 200*time.Millisecond))
	fmt.Printf("BENCH istiod-lite pods=%d services=%d clients=%d ready=%s cpu_at_ready=%s cpu_per_pod_ms=%.3f rss_mb=%.1f anon_mb=%.1f p50=%s p99=%s\n",
		cfg.Pods, cfg.Services, cfg.Clients, cold.Ready, cold.AtReady.CPU, float64(perPod)/1e6, mb(steady.RSS), mb(steady.AnonRSS), rep.P50, rep.P99)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
