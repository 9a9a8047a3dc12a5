package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weftmesh/weft/istiod-lite/model"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
)

// Sink receives object changes; *model.Model implements it. Methods may be
// called concurrently from different informers.
type Sink interface {
	UpsertNamespace(*corev1.Namespace)
	DeleteNamespace(name string)
	UpsertCompactPod(*model.Pod)
	DeletePod(ns, name string)
	UpsertService(*corev1.Service)
	DeleteService(ns, name string)
	UpsertEndpointSlice(*discoveryv1.EndpointSlice)
	DeleteEndpointSlice(ns, name string)
	UpsertGateway(*gatewayv1.Gateway)
	DeleteGateway(ns, name string)
	UpsertAuthorizationPolicy(*securityv1.AuthorizationPolicy)
	DeleteAuthorizationPolicy(ns, name string)
	UpsertPeerAuthentication(*securityv1.PeerAuthentication)
	DeletePeerAuthentication(ns, name string)
}

// Clients are the API clients the watcher uses. Istio and Gateway may be
// nil, which skips their kinds.
type Clients struct {
	Kube    kubernetes.Interface
	Istio   istioclient.Interface
	Gateway gatewayclient.Interface
}

// Config configures a Watcher.
type Config struct {
	// Log receives warnings; nil discards.
	Log *slog.Logger
	// CheckCRDs asks API discovery whether the Istio and Gateway API kinds
	// are served and skips those that are not (instead of never syncing).
	CheckCRDs bool
}

// managedByController selects EndpointSlices that the endpoint-slice
// controller did not write, i.e. those of selector-less Services.
const managedByController = discoveryv1.LabelManagedBy + "!=endpointslice-controller.k8s.io"

// Watcher owns the informers. Create with New, then Run.
type Watcher struct {
	log     *slog.Logger
	core    informers.SharedInformerFactory
	slices  informers.SharedInformerFactory
	istio   istioinformers.SharedInformerFactory
	gateway gatewayinformers.SharedInformerFactory
	synced  []cache.InformerSynced
	pods    *PodIndex
	order   *syncOrder
	// discovered caches API discovery answers during set-up (New and the
	// Watch methods run one after another, before Run).
	discovered map[string]discovery
	startedAt  time.Time
	syncedAt   chan time.Time
}

// New builds the informers and registers sink's handlers. It does not
// start watching.
func New(c Clients, sink Sink, cfg Config) (*Watcher, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{log: log, syncedAt: make(chan time.Time, 1), order: newSyncOrder()}
	w.core = informers.NewSharedInformerFactoryWithOptions(c.Kube, 0, informers.WithTransform(Transform))
	w.slices = informers.NewSharedInformerFactoryWithOptions(c.Kube, 0, informers.WithTransform(Transform),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managedByController }))

	// add registers h; pods are handed over after every other kind.
	add := func(kind string, inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
		gated := kind == "pods"
		if gated {
			h = w.order.gate(h)
		}
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("add %s event handler: %w", kind, err)
		}
		w.synced = append(w.synced, reg.HasSynced)
		if gated {
			w.order.gatedReg(kind, reg)
		} else {
			w.order.prereq(kind, reg)
		}
		return nil
	}
	pods := w.core.Core().V1().Pods().Informer()
	var err error
	if w.pods, err = newPodIndex(pods); err != nil {
		return nil, err
	}
	errs := []error{
		add("namespaces", w.core.Core().V1().Namespaces().Informer(), handler(sink.UpsertNamespace, func(_, n string) { sink.DeleteNamespace(n) })),
		add("pods", pods, handler(sink.UpsertCompactPod, sink.DeletePod)),
		add("services", w.core.Core().V1().Services().Informer(), handler(sink.UpsertService, sink.DeleteService)),
		add("endpointslices", w.slices.Discovery().V1().EndpointSlices().Informer(), handler(sink.UpsertEndpointSlice, sink.DeleteEndpointSlice)),
	}
	if c.Istio != nil && w.served(c.Kube, cfg.CheckCRDs, "security.istio.io/v1", "authorizationpolicies", "peerauthentications") {
		w.istio = istioinformers.NewSharedInformerFactoryWithOptions(c.Istio, 0, istioinformers.WithTransform(Transform))
		errs = append(errs,
			add("authorizationpolicies", w.istio.Security().V1().AuthorizationPolicies().Informer(), handler(sink.UpsertAuthorizationPolicy, sink.DeleteAuthorizationPolicy)),
			add("peerauthentications", w.istio.Security().V1().PeerAuthentications().Informer(), handler(sink.UpsertPeerAuthentication, sink.DeletePeerAuthentication)))
	}
	if c.Gateway != nil && w.served(c.Kube, cfg.CheckCRDs, "gateway.networking.k8s.io/v1", "gateways") {
		w.gateway = gatewayinformers.NewSharedInformerFactoryWithOptions(c.Gateway, 0, gatewayinformers.WithTransform(Transform))
		errs = append(errs, add("gateways", w.gateway.Gateway().V1().Gateways().Informer(), handler(sink.UpsertGateway, sink.DeleteGateway)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return w, nil
}

// served reports whether the API server serves all the resources of gv;
// without check it assumes so.
func (w *Watcher) served(kube kubernetes.Interface, check bool, gv string, resources ...string) bool {
	if !check {
		return true
	}
	list, err := w.discover(kube, gv)
	if err != nil {
		if apierrors.IsNotFound(err) {
			w.log.Warn("API group not served; its kinds are ignored until restart", "groupVersion", gv)
		} else {
			w.log.Warn("API discovery failed; watching anyway", "groupVersion", gv, "err", err)
			return true
		}
		return false
	}
	have := map[string]bool{}
	for _, r := range list.APIResources {
		have[r.Name] = true
	}
	for _, r := range resources {
		if !have[r] {
			w.log.Warn("resource not served; ignored until restart", "groupVersion", gv, "resource", r)
			return false
		}
	}
	return true
}

// discover asks API discovery for gv's resources once; the Istio and
// Gateway API groups are checked by more than one caller at start-up.
func (w *Watcher) discover(kube kubernetes.Interface, gv string) (*metav1.APIResourceList, error) {
	if r, ok := w.discovered[gv]; ok {
		return r.list, r.err
	}
	list, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
	if err == nil || apierrors.IsNotFound(err) {
		if w.discovered == nil {
			w.discovered = map[string]discovery{}
		}
		w.discovered[gv] = discovery{list, err}
	}
	return list, err
}

// discovery is one API discovery answer.
type discovery struct {
	list *metav1.APIResourceList
	err  error
}

// Run starts the informers and blocks until ctx ends, then stops them.
func (w *Watcher) Run(ctx context.Context) error {
	w.startedAt = time.Now()
	w.core.Start(ctx.Done())
	w.slices.Start(ctx.Done())
	if w.istio != nil {
		w.istio.Start(ctx.Done())
	}
	if w.gateway != nil {
		w.gateway.Start(ctx.Done())
	}
	ordered := make(chan struct{})
	go func() {
		defer close(ordered)
		w.order.run(ctx, w)
	}()
	if w.waitSynced(ctx) {
		w.syncedAt <- time.Now()
		w.log.Info("kubernetes informers synced", "after", time.Since(w.startedAt))
	}
	<-ctx.Done()
	<-ordered // the gate is open: no handler is held through shutdown
	w.core.Shutdown()
	w.slices.Shutdown()
	if w.istio != nil {
		w.istio.Shutdown()
	}
	if w.gateway != nil {
		w.gateway.Shutdown()
	}
	return nil
}

// waitSynced polls HasSynced every few milliseconds (client-go's
// WaitForCacheSync polls every 100 ms, which would show in the start-up
// time) until it holds or ctx ends.
func (w *Watcher) waitSynced(ctx context.Context) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !w.HasSynced() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// HasSynced reports whether every informer has listed and every initial
// object has been handed to the sink.
func (w *Watcher) HasSynced() bool {
	for _, s := range w.synced {
		if !s() {
			return false
		}
	}
	return true
}

// SyncedAt receives, once, the time the initial sync completed.
func (w *Watcher) SyncedAt() <-chan time.Time { return w.syncedAt }
