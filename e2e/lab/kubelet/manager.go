package kubelet

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// podManager watches the pods bound to this node and owns one podWorker
// per pod UID.
type podManager struct {
	k *kubelet

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	ctx     context.Context
	wg      sync.WaitGroup
	closed  bool
}

func newPodManager(k *kubelet) *podManager {
	return &podManager{k: k, workers: map[types.UID]*podWorker{}}
}

// run watches pods until ctx ends, then terminates every pod and waits.
func (m *podManager) run(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	sel := fields.OneTermEqualSelector("spec.nodeName", m.k.cfg.NodeName).String()
	pods := m.k.client.CoreV1().Pods(metav1.NamespaceAll)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pods.Watch(ctx, o)
		},
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &v1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { m.upsert(o.(*v1.Pod)) },
			UpdateFunc: func(_, o any) { m.upsert(o.(*v1.Pod)) },
			DeleteFunc: func(o any) {
				if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				if p, ok := o.(*v1.Pod); ok {
					m.remove(p.UID)
				}
			},
		},
	})
	informer.RunWithContext(ctx)
	m.mu.Lock()
	m.closed = true
	ws := make([]*podWorker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.terminate()
	}
	m.wg.Wait()
	for _, w := range ws {
		w.cleanup()
	}
	m.k.events.wait()
}

func (m *podManager) upsert(pod *v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if w, ok := m.workers[pod.UID]; ok {
		w.update(pod)
		select {
		case <-w.done: // already torn down (a finished pod): finalise now
			if pod.DeletionTimestamp != nil {
				m.wg.Go(func() { m.finalise(pod) })
			}
		default:
		}
		return
	}
	if pod.DeletionTimestamp != nil {
		// Not running here: nothing to stop, finalise at once.
		m.wg.Go(func() { m.finalise(pod) })
		return
	}
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return // finished before we saw it (e.g. a previous run)
	}
	w := newPodWorker(m.k, pod)
	m.workers[pod.UID] = w
	ctx := m.ctx
	m.wg.Go(func() { w.run(ctx) })
}

func (m *podManager) finalise(pod *v1.Pod) {
	err := m.k.client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		m.k.log.Warn("finalise pod deletion", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// remove stops the pod's worker; once it has torn down, its state dir
// goes too.
func (m *podManager) remove(uid types.UID) {
	m.mu.Lock()
	w, ok := m.workers[uid]
	if ok && !m.closed {
		delete(m.workers, uid)
	}
	closed := m.closed
	m.mu.Unlock()
	if !ok || closed {
		return
	}
	w.markRemoved()
	m.wg.Go(func() {
		<-w.done
		w.cleanup()
	})
}

// lookup finds a running pod worker by namespace and name.
func (m *podManager) lookup(ns, name string) *podWorker {
	m.mu.Lock()
	defer m.mu.Unlock()
	var found *podWorker
	for _, w := range m.workers {
		p := w.currentPod()
		if p.Namespace == ns && p.Name == name {
			found = w
			if !w.stopping() {
				return w // prefer the live pod over one being torn down
			}
		}
	}
	return found
}
