package scale

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Config sizes and targets a run.
type Config struct {
	// Kube creates the objects.
	Kube kubernetes.Interface
	// XDSAddress is istiod-lite's xDS address; TLS nil means plaintext.
	XDSAddress  string
	TLS         *tls.Config
	DialOptions []grpc.DialOption
	// Namespaces, Pods, Services and Clients size the run (defaults 50,
	// 5000, 1000, 10).
	Namespaces, Pods, Services, Clients int
	// Changes is the number of pod changes timed (default 200); Gap is the
	// pause between them (default 20 ms).
	Changes int
	Gap     time.Duration
	// Prefix names the namespaces "<prefix>-<i>" (default "weft-scale").
	Prefix string
	// Node is the nodeName given to every pod (default "scale-node").
	Node string
	// Workers bounds concurrent API writes (default 32).
	Workers int
	// Keep leaves the objects in place afterwards.
	Keep bool
	// Log receives progress; nil discards.
	Log *slog.Logger
}

func (c *Config) defaults() error {
	if c.Kube == nil {
		return errors.New("scale: a kube client is required")
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Namespaces, 50)
	def(&c.Pods, 5000)
	def(&c.Services, 1000)
	def(&c.Clients, 10)
	def(&c.Changes, 200)
	def(&c.Workers, 32)
	if c.Gap <= 0 {
		c.Gap = 20 * time.Millisecond
	}
	if c.Prefix == "" {
		c.Prefix = "weft-scale"
	}
	if c.Node == "" {
		c.Node = "scale-node"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Pods > 250*250 {
		return fmt.Errorf("scale: at most %d pods", 250*250)
	}
	return nil
}

// Report is the outcome of a run.
type Report struct {
	Pods, Services, Namespaces, Clients int
	// Create is the time to create every object and set pod status.
	Create time.Duration
	// InitialSync is from connecting the clients to every client holding
	// every pod (objects already present).
	InitialSync time.Duration
	// Propagation percentiles: pod status change to every client applied.
	P50, P99, Max time.Duration
	Samples       int
	// Removal is the time from deleting one pod to every client dropping it.
	Removal time.Duration
}

func (r Report) String() string {
	return fmt.Sprintf("pods=%d services=%d namespaces=%d clients=%d create=%s initial_sync=%s propagation p50=%s p99=%s max=%s (n=%d) removal=%s",
		r.Pods, r.Services, r.Namespaces, r.Clients, r.Create.Round(time.Millisecond), r.InitialSync.Round(time.Millisecond),
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Max.Round(100*time.Microsecond), r.Samples, r.Removal.Round(100*time.Microsecond))
}

func (c *Config) nsName(i int) string { return fmt.Sprintf("%s-%d", c.Prefix, i) }

func podIP(i int) string { return fmt.Sprintf("100.64.%d.%d", i/250, i%250+1) }

// Run creates the objects, measures, and unless Keep deletes the
// namespaces again.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	if !cfg.Keep {
		defer Cleanup(context.WithoutCancel(ctx), cfg)
	}
	took, err := Create(ctx, cfg)
	if err != nil {
		return Report{}, err
	}
	rep, err := Measure(ctx, cfg)
	rep.Create = took
	return rep, err
}

// Create makes the namespaces, services and pods (existing ones are
// reused) and returns how long it took.
func Create(ctx context.Context, cfg Config) (time.Duration, error) {
	if err := cfg.defaults(); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := create(ctx, cfg); err != nil {
		return 0, err
	}
	cfg.Log.Info("objects created", "after", time.Since(start))
	return time.Since(start), nil
}

// Measure connects the clients to istiod-lite, waits for the initial
// state, then times pod changes and one removal. The objects must exist
// (Create); the removed pod is pod-0.
func Measure(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	if cfg.XDSAddress == "" {
		return Report{}, errors.New("scale: an xds address is required")
	}
	rep := Report{Pods: cfg.Pods, Services: cfg.Services, Namespaces: cfg.Namespaces, Clients: cfg.Clients}
	obs := newObserver()
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := time.Now()
	for i := range cfg.Clients {
		c := xdsclient.NewClient(xdsclient.Config{
			Address: cfg.XDSAddress, TLS: cfg.TLS, DialOptions: cfg.DialOptions,
			Types:   []string{xdsclient.AddressType, xdsclient.AuthorizationType},
			Handler: obs.client(i), Log: cfg.Log,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(cctx); err != nil {
				cfg.Log.Error("xds client", "client", i, "err", err)
			}
		}()
	}
	uids := make([]string, cfg.Pods)
	for i := range uids {
		uids[i] = podUID(cfg, i)
	}
	if err := obs.wait(ctx, 5*time.Minute, func() bool { return obs.allHave(uids) }); err != nil {
		return rep, fmt.Errorf("initial sync: %w", err)
	}
	rep.InitialSync = time.Since(start)
	cfg.Log.Info("clients synced", "after", rep.InitialSync)

	var samples []time.Duration
	for i := range cfg.Changes {
		p := (i * 7919) % cfg.Pods // spread over namespaces
		ns, name := cfg.nsName(p%cfg.Namespaces), fmt.Sprintf("pod-%d", p)
		pod, err := cfg.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return rep, fmt.Errorf("get pod: %w", err)
		}
		want := workloadapi.WorkloadStatus_UNHEALTHY
		ready := corev1.ConditionFalse
		if !podReady(pod) {
			want, ready = workloadapi.WorkloadStatus_HEALTHY, corev1.ConditionTrue
		}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		uid := uids[p]
		t0 := time.Now()
		if _, err := cfg.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return rep, fmt.Errorf("update pod status: %w", err)
		}
		if err := obs.wait(ctx, 30*time.Second, func() bool { return obs.allStatus(uid, want) }); err != nil {
			return rep, fmt.Errorf("change %d: %w", i, err)
		}
		samples = append(samples, obs.lastArrival(uid).Sub(t0))
		time.Sleep(cfg.Gap)
	}
	slices.Sort(samples)
	rep.Samples = len(samples)
	if n := len(samples); n > 0 {
		rep.P50, rep.P99, rep.Max = samples[n/2], samples[min(n-1, n*99/100)], samples[n-1]
	}

	victim := uids[0]
	t0 := time.Now()
	if err := cfg.Kube.CoreV1().Pods(cfg.nsName(0)).Delete(ctx, "pod-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		return rep, fmt.Errorf("delete pod: %w", err)
	}
	if err := obs.wait(ctx, 30*time.Second, func() bool { return obs.noneHave(victim) }); err != nil {
		return rep, fmt.Errorf("removal: %w", err)
	}
	rep.Removal = time.Since(t0)
	return rep, nil
}

func podUID(cfg Config, i int) string {
	return "Kubernetes//Pod/" + cfg.nsName(i%cfg.Namespaces) + "/" + fmt.Sprintf("pod-%d", i)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// create makes the namespaces, services and pods, in parallel.
func create(ctx context.Context, cfg Config) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for i := range cfg.Namespaces {
		g.Go(func() error {
			_, err := cfg.Kube.CoreV1().Namespaces().Create(gctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
				Name: cfg.nsName(i), Labels: map[string]string{"istio.io/dataplane-mode": "ambient", "weft.dev/scale": "true"}}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create namespaces: %w", err)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for i := range cfg.Services {
		g.Go(func() error {
			_, err := cfg.Kube.CoreV1().Services(cfg.nsName(i%cfg.Namespaces)).Create(gctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("app-%d", i)},
					Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
	}
	for i := range cfg.Pods {
		g.Go(func() error { return createPod(gctx, cfg, i) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create services and pods: %w", err)
	}
	return nil
}

// createPod creates pod i in namespace i mod Namespaces, selected by
// service i mod Services (which lives in the same namespace when Services
// is a multiple of Namespaces), and sets its
// IP and readiness through the status subresource.
func createPod(ctx context.Context, cfg Config, i int) error {
	ns := cfg.nsName(i % cfg.Namespaces)
	pods := cfg.Kube.CoreV1().Pods(ns)
	p, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%cfg.Services)},
			Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}},
		Spec: corev1.PodSpec{NodeName: cfg.Node, Containers: []corev1.Container{{Name: "app", Image: "weft-scale-none",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		p, err = pods.Get(ctx, fmt.Sprintf("pod-%d", i), metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = podIP(i)
	p.Status.PodIPs = []corev1.PodIP{{IP: podIP(i)}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// Cleanup deletes the benchmark's namespaces.
func Cleanup(ctx context.Context, cfg Config) {
	if cfg.defaults() != nil {
		return
	}
	for i := range cfg.Namespaces {
		if err := cfg.Kube.CoreV1().Namespaces().Delete(ctx, cfg.nsName(i), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			cfg.Log.Warn("delete namespace", "namespace", cfg.nsName(i), "err", err)
		}
	}
}
