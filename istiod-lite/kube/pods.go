package kube

import (
	"fmt"

	"github.com/weftmesh/weft/istiod-lite/model"
	"k8s.io/client-go/tools/cache"
)

// podNodeIndex indexes the pod cache by spec.nodeName.
const podNodeIndex = "spec.nodeName"

func podsByNode(obj any) ([]string, error) {
	p, ok := obj.(*model.Pod)
	if !ok || p.NodeName == "" {
		return nil, nil
	}
	return []string{p.NodeName}, nil
}

// PodIndex looks pods up in the watcher's pod cache, the one the model is
// fed from, so that other components (the CA's impersonation checks) need
// no pod cache of their own. It is safe for concurrent use.
type PodIndex struct {
	inf cache.SharedIndexInformer
}

// newPodIndex adds the node index to inf, which must not have started.
func newPodIndex(inf cache.SharedIndexInformer) (*PodIndex, error) {
	if err := inf.AddIndexers(cache.Indexers{podNodeIndex: podsByNode}); err != nil {
		return nil, fmt.Errorf("pod node index: %w", err)
	}
	return &PodIndex{inf: inf}, nil
}

// OnNode returns the pods scheduled on node. The pods are shared with the
// cache and the model: callers must not modify them.
func (x *PodIndex) OnNode(node string) ([]*model.Pod, error) {
	objs, err := x.inf.GetIndexer().ByIndex(podNodeIndex, node)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*model.Pod); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// HasSynced reports whether the pod cache holds every pod listed at start.
func (x *PodIndex) HasSynced() bool { return x.inf.HasSynced() }

// Pods returns the index over the watcher's pod cache.
func (w *Watcher) Pods() *PodIndex { return w.pods }
