package ca

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// rootPublisher keeps ConfigMap istio-ca-root-cert with the root PEM in
// every namespace: it creates it in new namespaces and repairs it when it
// is edited or deleted.
type rootPublisher struct {
	kube    kubernetes.Interface
	rootPEM string
	nsList  corelisters.NamespaceLister
	cmList  corelisters.ConfigMapLister
	queue   workqueue.TypedRateLimitingInterface[string]
	log     *slog.Logger
}

func newRootPublisher(kube kubernetes.Interface, rootPEM []byte, ns cache.SharedIndexInformer, cm cache.SharedIndexInformer, log *slog.Logger) (*rootPublisher, error) {
	p := &rootPublisher{
		kube:    kube,
		rootPEM: string(rootPEM),
		nsList:  corelisters.NewNamespaceLister(ns.GetIndexer()),
		cmList:  corelisters.NewConfigMapLister(cm.GetIndexer()),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ca-root-configmap"}),
		log: log,
	}
	enqueueNS := func(obj any) {
		if n, ok := obj.(*corev1.Namespace); ok {
			p.queue.Add(n.Name)
		}
	}
	if _, err := ns.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueNS,
		UpdateFunc: func(_, obj any) { enqueueNS(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch namespaces: %w", err)
	}
	enqueueCM := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if c, ok := obj.(*corev1.ConfigMap); ok && c.Name == RootConfigMapName {
			p.queue.Add(c.Namespace)
		}
	}
	if _, err := cm.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueCM,
		UpdateFunc: func(_, obj any) { enqueueCM(obj) },
		DeleteFunc: enqueueCM,
	}); err != nil {
		return nil, fmt.Errorf("watch configmaps: %w", err)
	}
	return p, nil
}

// run processes the queue until ctx ends; the caller has synced the
// informers first.
func (p *rootPublisher) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		p.queue.ShutDown()
	}()
	for {
		ns, shutdown := p.queue.Get()
		if shutdown {
			return
		}
		if err := p.reconcile(ctx, ns); err != nil {
			p.log.Warn("publish root certificate", "namespace", ns, "error", err)
			p.queue.AddRateLimited(ns)
		} else {
			p.queue.Forget(ns)
		}
		p.queue.Done(ns)
	}
}

func (p *rootPublisher) reconcile(ctx context.Context, nsName string) error {
	ns, err := p.nsList.Get(nsName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
		return nil
	}
	cms := p.kube.CoreV1().ConfigMaps(nsName)
	cm, err := p.cmList.ConfigMaps(nsName).Get(RootConfigMapName)
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootConfigMapName, Namespace: nsName, Labels: map[string]string{"istio.io/config": "true"}},
			Data:       map[string]string{RootConfigMapKey: p.rootPEM},
		}, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			// Already there: the informer event will bring it for a check.
			return nil
		}
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			// The namespace is going away.
			return nil
		}
		return fmt.Errorf("create configmap %s/%s: %w", nsName, RootConfigMapName, err)
	}
	if err != nil {
		return err
	}
	if cm.Data[RootConfigMapKey] == p.rootPEM {
		return nil
	}
	upd := cm.DeepCopy()
	if upd.Data == nil {
		upd.Data = map[string]string{}
	}
	upd.Data[RootConfigMapKey] = p.rootPEM
	if _, err := cms.Update(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update configmap %s/%s: %w", nsName, RootConfigMapName, err)
	}
	p.log.Info("repaired root certificate configmap", "namespace", nsName)
	return nil
}
