package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/weftmesh/weft/cni/iptables"
	"github.com/weftmesh/weft/pkg/netns"
)

// Agent is the node agent. Create it with New and start it with Run.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	kube    kubernetes.Interface
	rules   podRules
	probes  probeRules
	probes6 probeRules // nil unless IPv6 capture is on
	finder  netnsFinder
	open    nsOpener
	zt      ztunnel
	zdsSrv  *zdsServer // nil when zt is replaced in tests
	events  record.EventRecorder
	metrics *metrics

	podLister listersv1.PodLister
	nsLister  listersv1.NamespaceLister
	queue     workqueue.TypedRateLimitingInterface[string]
	synced    atomic.Bool

	paths    netnsPaths // from CNI ADD
	podLocks keyedMutex
	mu       sync.Mutex
	pods     map[string]*podState // by uid
}

// deps are the agent's connections to the kernel and ztunnel; tests
// replace them.
type deps struct {
	rules   podRules
	probes  probeRules
	probes6 probeRules
	finder  netnsFinder
	open    nsOpener
	zt      ztunnel
	events  record.EventRecorder
}

// New builds an agent for the node, with real iptables, netlink, /proc and
// ZDS backends.
func New(ctx context.Context, cfg Config, kube kubernetes.Interface, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mode, _ := iptables.ParseMode(cfg.IPTablesMode)
	if mode == "" {
		mode = iptables.DetectMode(ctx)
	}
	tables, err := iptables.NewBackend(mode)
	if err != nil {
		return nil, err
	}
	log.Info("iptables mode", "mode", string(mode), "ipv6", cfg.IPv6, "capture_udp", cfg.CaptureUDP)
	rules := iptables.NewRedirector(iptables.Config{RedirectDNS: cfg.RedirectDNS, CaptureUDP: cfg.CaptureUDP},
		tables, iptables.NetlinkRoutes{CaptureUDP: cfg.CaptureUDP})
	var probes6 probeRules
	if cfg.IPv6 {
		tables6, err := iptables.NewBackend6(mode)
		if err != nil {
			return nil, err
		}
		rules = rules.WithIPv6(tables6, iptables.NetlinkRoutes{IPv6: true})
		probes6 = iptables.ProbeSNAT{Tables: tables6, IPv6: true}
	}
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	rec := bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "weft-cni-agent", Host: cfg.NodeName})
	return newAgent(cfg, kube, log, deps{
		rules:   rules,
		probes:  iptables.ProbeSNAT{Tables: tables},
		probes6: probes6,
		finder:  procFinder{netnsDirs: []string{DefaultNetnsDir}},
		open:    netns.Open,
		events:  rec,
	}), nil
}

func newAgent(cfg Config, kube kubernetes.Interface, log *slog.Logger, d deps) *Agent {
	cfg = cfg.withDefaults()
	a := &Agent{
		cfg: cfg, log: log, kube: kube,
		rules: d.rules, probes: d.probes, probes6: d.probes6, finder: d.finder, open: d.open, events: d.events,
		metrics: newMetrics(),
		pods:    map[string]*podState{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods"}),
	}
	a.zt = d.zt
	if a.zt == nil {
		a.zdsSrv = newZDSServer(cfg.ZDSSocket, log.With("part", "zds"), a.metrics, a.snapshot, a.onSnapshotAck)
		a.zt = a.zdsSrv
	}
	return a
}

// snapshot lists every held pod for a new ztunnel connection.
func (a *Agent) snapshot() []workload {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]workload, 0, len(a.pods))
	for _, st := range a.pods {
		out = append(out, st.workload())
	}
	return out
}

// onSnapshotAck marks a pod acked by a snapshot and queues it so it gets
// annotated. The ack counts only for the namespace the snapshot sent: if
// the pod got a new sandbox meanwhile (a new podState with another
// netns), that one still waits for its own ack before it is annotated.
func (a *Agent) onSnapshotAck(w workload) {
	a.mu.Lock()
	st := a.pods[w.UID]
	ok := st != nil && st.ns == w.NetNS
	if ok && !st.acked {
		st.acked = true
		a.metrics.enrolled.Inc()
	}
	a.mu.Unlock()
	if ok {
		a.queue.Add(st.namespace + "/" + st.name)
	}
}

// Ready reports whether the agent can enroll pods: informers synced and a
// ztunnel connected. The error says what is missing.
func (a *Agent) Ready() error {
	if !a.synced.Load() {
		return errors.New("informers not synced")
	}
	if a.zt.Connected() == 0 {
		return fmt.Errorf("%w at %s", ErrNoZtunnel, a.cfg.ZDSSocket)
	}
	return nil
}

// Run starts everything and blocks until ctx is done. Capture stays in
// place when the agent stops: pods remain in the mesh and a restarted
// agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.probes.Ensure(); err != nil {
		return fmt.Errorf("install probe snat chain: %w", err)
	}
	if a.probes6 != nil {
		if err := a.probes6.Ensure(); err != nil {
			return fmt.Errorf("install ipv6 probe snat chain: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 5)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	podFactory := informers.NewSharedInformerFactoryWithOptions(a.kube, a.cfg.ResyncInterval,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	nsFactory := informers.NewSharedInformerFactory(a.kube, a.cfg.ResyncInterval)
	podInf := podFactory.Core().V1().Pods()
	nsInf := nsFactory.Core().V1().Namespaces()
	a.podLister, a.nsLister = podInf.Lister(), nsInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueuePod,
		UpdateFunc: func(_, obj any) { a.enqueuePod(obj) },
		DeleteFunc: a.enqueuePod,
	}); err != nil {
		return err
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.namespaceChanged,
		UpdateFunc: func(_, obj any) { a.namespaceChanged(obj) },
		DeleteFunc: a.namespaceChanged,
	}); err != nil {
		return err
	}
	podFactory.Start(ctx.Done())
	nsFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer nsFactory.Shutdown()

	start("cni server", a.serveCNI)
	if a.cfg.HTTPAddr != "" {
		start("http server", a.serveHTTP)
	}
	if a.cfg.AdminAddr != "" {
		start("admin server", a.serveAdmin)
	}

	a.log.Info("waiting for informers", "node", a.cfg.NodeName)
	if !cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, nsInf.Informer().HasSynced) {
		wg.Wait()
		return firstErr(errc, ctx.Err())
	}
	a.writeEnrollment()
	a.log.Info("informers synced; reconciling")
	// ZDS starts only once every pod is held: a ztunnel connecting earlier
	// would get an incomplete snapshot and drop the pods missing from it.
	a.initialSync(ctx)
	if a.zdsSrv != nil {
		start("zds server", func(ctx context.Context) error { return a.zdsSrv.Run(ctx, nil) })
	}
	a.synced.Store(true)
	for _, p := range mustList(a.podLister) {
		a.queue.Add(p.Namespace + "/" + p.Name)
	}

	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.processNext(ctx) {
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.cleanupLoop(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.ztunnelWatch(ctx, a.cfg.NoZtunnelGrace)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.ruleCheckLoop(ctx, a.cfg.RuleCheckInterval)
	}()

	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	a.mu.Lock()
	for _, st := range a.pods {
		_ = st.ns.Close()
	}
	a.mu.Unlock()
	return firstErr(errc, nil)
}

func firstErr(errc chan error, fallback error) error {
	select {
	case err := <-errc:
		return err
	default:
		return fallback
	}
}

func mustList(l listersv1.PodLister) []*corev1.Pod {
	pods, _ := l.List(labels.Everything())
	return pods
}
