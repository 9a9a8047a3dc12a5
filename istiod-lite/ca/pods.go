package ca

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// PodLookup finds the pods scheduled on a node, for impersonation checks.
// istiod-lite passes one backed by its discovery informers so that the CA
// keeps no second cache of every pod; without one the CA runs its own pod
// informer. Implementations must be safe for concurrent use.
type PodLookup interface {
	// PodsOnNode returns the pods whose spec.nodeName is node, in no
	// particular order. The result is the caller's to keep.
	PodsOnNode(node string) ([]ScheduledPod, error)
	// HasSynced reports whether the lookup has seen every pod that existed
	// when it started; until then the CA refuses impersonation with
	// Unavailable.
	HasSynced() bool
}

// ScheduledPod is what impersonation checks need of a pod.
type ScheduledPod struct {
	Namespace string
	// ServiceAccount is spec.serviceAccountName; empty means "default".
	ServiceAccount string
	Phase          corev1.PodPhase
}

// nodeIndex indexes pods by the node they are scheduled on.
const nodeIndex = "spec.nodeName"

func indexByNode(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return nil, nil
	}
	return []string{pod.Spec.NodeName}, nil
}

// slimPod keeps only what impersonation checks need, so the informer's
// cache of every pod in the cluster stays small.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones and other types pass through
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion,
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName, ServiceAccountName: pod.Spec.ServiceAccountName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}, nil
}

// informerPods is the CA's own PodLookup, over a pod informer with a node
// index.
type informerPods struct {
	inf cache.SharedIndexInformer
}

var _ PodLookup = informerPods{}

// newInformerPods prepares inf (not yet started) for lookups by node.
func newInformerPods(inf cache.SharedIndexInformer) (informerPods, error) {
	if err := inf.SetTransform(slimPod); err != nil {
		return informerPods{}, fmt.Errorf("pod informer: %w", err)
	}
	if err := inf.AddIndexers(cache.Indexers{nodeIndex: indexByNode}); err != nil {
		return informerPods{}, fmt.Errorf("pod informer: %w", err)
	}
	return informerPods{inf: inf}, nil
}

func (p informerPods) PodsOnNode(node string) ([]ScheduledPod, error) {
	objs, err := p.inf.GetIndexer().ByIndex(nodeIndex, node)
	if err != nil {
		return nil, err
	}
	out := make([]ScheduledPod, 0, len(objs))
	for _, o := range objs {
		if pod, ok := o.(*corev1.Pod); ok {
			out = append(out, ScheduledPod{Namespace: pod.Namespace, ServiceAccount: pod.Spec.ServiceAccountName, Phase: pod.Status.Phase})
		}
	}
	return out, nil
}

func (p informerPods) HasSynced() bool { return p.inf.HasSynced() }
