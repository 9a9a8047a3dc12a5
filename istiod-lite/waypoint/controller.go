package waypoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1client "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"
	gatewaylisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"
)

// ClassName is the GatewayClass whose Gateways the controller deploys.
const ClassName = "istio-waypoint"

// GatewayClient is the part of the Gateway API clientset the controller
// uses (status writes); GatewayV1() of the typed clientset satisfies it.
type GatewayClient = gatewayv1client.GatewaysGetter

// Controller deploys waypoints for Gateways of class istio-waypoint.
// Create it with New, then Run. Several replicas may run at once: they
// apply the same objects with the same field manager, and status writes
// are guarded by resourceVersion.
type Controller struct {
	cfg         Config
	kube        kubernetes.Interface
	gwClient    GatewayClient
	gateways    gatewaylisters.GatewayLister
	factory     informers.SharedInformerFactory
	deployments appslisters.DeploymentLister
	services    corelisters.ServiceLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	applied  map[string]string // gateway key → digest of the objects last applied
	reported map[string]string // gateway key → the status last written
}

// New registers the controller's handlers on gateways, the shared
// Gateway informer (istiod-lite's kube watcher owns and starts it), and
// builds Deployment and Service informers limited to the objects it
// manages (ManagedSelector), which Run starts.
func New(kc kubernetes.Interface, gc GatewayClient, gateways cache.SharedIndexInformer, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("waypoint controller config: %w", err)
	}
	c := &Controller{
		cfg:      cfg,
		kube:     kc,
		gwClient: gc,
		gateways: gatewaylisters.NewGatewayLister(gateways.GetIndexer()),
		factory: informers.NewSharedInformerFactoryWithOptions(kc, 0,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = ManagedSelector })),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "waypoint"}),
		applied:  map[string]string{},
		reported: map[string]string{},
	}
	deps := c.factory.Apps().V1().Deployments()
	svcs := c.factory.Core().V1().Services()
	c.deployments, c.services = deps.Lister(), svcs.Lister()

	gwReg, err := gateways.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueGateway,
		UpdateFunc: func(_, o any) { c.enqueueGateway(o) },
		DeleteFunc: c.enqueueGateway,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway handler: %w", err)
	}
	owned := cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueOwner,
		UpdateFunc: func(_, o any) { c.enqueueOwner(o) },
		DeleteFunc: c.enqueueOwner,
	}
	depReg, err := deps.Informer().AddEventHandler(owned)
	if err != nil {
		return nil, fmt.Errorf("deployment handler: %w", err)
	}
	svcReg, err := svcs.Informer().AddEventHandler(owned)
	if err != nil {
		return nil, fmt.Errorf("service handler: %w", err)
	}
	c.synced = []cache.InformerSynced{gwReg.HasSynced, depReg.HasSynced, svcReg.HasSynced}
	return c, nil
}

// Run starts the managed-object informers and the workers and blocks until
// ctx ends; it then stops them and returns nil.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	c.cfg.resolveImage(ctx, c.kube)
	c.cfg.Log.Info("waypoint controller running", "image", c.cfg.Image)
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.work, time.Second) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// work processes queue items until the queue shuts down.
func (c *Controller) work(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		err := c.reconcile(ctx, key)
		switch {
		case err == nil:
			c.queue.Forget(key)
		case ctx.Err() != nil:
		default:
			c.cfg.Log.Warn("waypoint reconcile failed; retrying", "gateway", key, "err", err)
			c.queue.AddRateLimited(key)
		}
		c.queue.Done(key)
	}
}

func (c *Controller) enqueueGateway(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	gw, ok := obj.(*gatewayv1.Gateway)
	if !ok || gw.Spec.GatewayClassName != ClassName {
		return
	}
	c.queue.Add(gw.Namespace + "/" + gw.Name)
}

// enqueueOwner queues the Gateway that owns a managed Deployment or
// Service.
func (c *Controller) enqueueOwner(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "Gateway" {
		c.queue.Add(o.GetNamespace() + "/" + ref.Name)
		return
	}
	if name := o.GetLabels()[LabelGatewayName]; name != "" {
		c.queue.Add(o.GetNamespace() + "/" + name)
	}
}

// reconcile brings the waypoint of the Gateway key to its desired state:
// objects applied, status reported.
func (c *Controller) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we queued; drop it
	}
	gw, err := c.gateways.Gateways(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && (gw.Spec.GatewayClassName != ClassName || gw.DeletionTimestamp != nil)) {
		// Gone (its objects are garbage-collected through their owner
		// reference) or no longer ours.
		c.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get gateway %s: %w", key, err)
	}
	if err := c.apply(ctx, key, gw); err != nil {
		return err
	}
	return c.report(ctx, key, gw)
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.applied, key)
	delete(c.reported, key)
}

// apply server-side applies the ServiceAccount, Service and Deployment of
// gw. It skips the calls when it applied the same objects before and they
// are still there.
func (c *Controller) apply(ctx context.Context, key string, gw *gatewayv1.Gateway) error {
	sa, svc, dep := ServiceAccount(gw), Service(gw), Deployment(gw, c.cfg)
	digest, err := digestOf(sa, svc, dep)
	if err != nil {
		return err
	}
	c.mu.Lock()
	same := c.applied[key] == digest
	c.mu.Unlock()
	if same && c.present(gw) {
		return nil
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if _, err := c.kube.CoreV1().ServiceAccounts(gw.Namespace).Apply(ctx, sa, opts); err != nil {
		return fmt.Errorf("apply serviceaccount %s: %w", key, err)
	}
	if _, err := c.kube.CoreV1().Services(gw.Namespace).Apply(ctx, svc, opts); err != nil {
		return fmt.Errorf("apply service %s: %w", key, err)
	}
	if _, err := c.kube.AppsV1().Deployments(gw.Namespace).Apply(ctx, dep, opts); err != nil {
		return fmt.Errorf("apply deployment %s: %w", key, err)
	}
	c.mu.Lock()
	c.applied[key] = digest
	c.mu.Unlock()
	c.cfg.Log.Info("waypoint applied", "gateway", key, "image", c.cfg.Image)
	return nil
}

// present reports whether gw's Deployment and Service are in the caches
// and owned by this very Gateway (not a deleted one of the same name).
func (c *Controller) present(gw *gatewayv1.Gateway) bool {
	d, err := c.deployments.Deployments(gw.Namespace).Get(gw.Name)
	if err != nil || !ownedBy(d, gw) {
		return false
	}
	s, err := c.services.Services(gw.Namespace).Get(gw.Name)
	return err == nil && ownedBy(s, gw)
}

func ownedBy(o metav1.Object, gw *gatewayv1.Gateway) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.UID == gw.UID
}

func digestOf(objs ...any) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			return "", fmt.Errorf("encode apply configuration: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
