package ca

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/weftmesh/weft/pkg/identity"
)

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

// impersonator decides whether a caller may obtain another identity.
type impersonator struct {
	ztunnels []string // "namespace/name"
	pods     cache.Indexer
	synced   func() bool
}

// errNotSynced means the pod cache is not ready, so no decision is possible.
var errNotSynced = errors.New("pod cache not synced yet, retry shortly")

// allow returns nil when c may obtain target on behalf of a pod: c must be
// a ztunnel service account, its token must be bound to a node, and a pod
// with target's namespace and service account must run on that node.
func (im *impersonator) allow(c caller, target identity.ID) error {
	if !slices.Contains(im.ztunnels, c.String()) {
		return fmt.Errorf("service account %s may not impersonate %s: only %v may", c, target, im.ztunnels)
	}
	if c.NodeName == "" {
		return fmt.Errorf("service account %s may not impersonate %s: its token is not bound to a pod on a node", c, target)
	}
	if !im.synced() {
		return errNotSynced
	}
	objs, err := im.pods.ByIndex(nodeIndex, c.NodeName)
	if err != nil {
		return fmt.Errorf("look up pods on node %s: %w", c.NodeName, err)
	}
	for _, o := range objs {
		pod, ok := o.(*corev1.Pod)
		if !ok {
			continue
		}
		if pod.Namespace != target.Namespace || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		if sa == target.ServiceAccount {
			return nil
		}
	}
	return fmt.Errorf("service account %s may not impersonate %s: no running pod with service account %s/%s on node %s",
		c, target, target.Namespace, target.ServiceAccount, c.NodeName)
}
