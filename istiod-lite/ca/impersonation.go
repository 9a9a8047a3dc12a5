package ca

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/pkg/identity"
)

// impersonator decides whether a caller may obtain another identity.
type impersonator struct {
	ztunnels []string // "namespace/name"
	pods     PodLookup
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
	if !im.pods.HasSynced() {
		return errNotSynced
	}
	pods, err := im.pods.PodsOnNode(c.NodeName)
	if err != nil {
		return fmt.Errorf("look up pods on node %s: %w", c.NodeName, err)
	}
	for _, pod := range pods {
		if pod.Namespace != target.Namespace || pod.Phase == corev1.PodSucceeded || pod.Phase == corev1.PodFailed {
			continue
		}
		sa := pod.ServiceAccount
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
