package server

import (
	"github.com/weftmesh/weft/istiod-lite/ca"
	"github.com/weftmesh/weft/istiod-lite/kube"
)

// caPods answers the CA's impersonation lookups from the discovery pod
// cache, so istiod-lite holds one cache of every pod rather than two.
type caPods struct{ idx *kube.PodIndex }

var _ ca.PodLookup = caPods{}

func (p caPods) PodsOnNode(node string) ([]ca.ScheduledPod, error) {
	pods, err := p.idx.OnNode(node)
	if err != nil {
		return nil, err
	}
	out := make([]ca.ScheduledPod, len(pods))
	for i, pod := range pods {
		out[i] = ca.ScheduledPod{Namespace: pod.Namespace, ServiceAccount: pod.ServiceAccount, Phase: pod.Phase}
	}
	return out, nil
}

func (p caPods) HasSynced() bool { return p.idx.HasSynced() }
