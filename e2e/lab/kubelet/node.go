package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const (
	kubeletVersion     = "v1.37.2"
	leaseDuration      = 40 * time.Second
	leaseRenewInterval = 10 * time.Second
	nodeStatusInterval = 20 * time.Second
)

// nodeCapacity is what the Node offers the scheduler. It is generous so
// that lab pods with requests always fit.
var (
	nodeCPU    = resource.MustParse("16")
	nodeMemory = resource.MustParse("64Gi")
)

// nodeAgent registers the Node and keeps its status and Lease fresh.
type nodeAgent struct {
	cfg    *Config
	client kubernetes.Interface
	log    *slog.Logger
	now    func() time.Time
}

// desiredNode returns the Node object kubelet-lite registers.
func (n *nodeAgent) desiredNode() *v1.Node {
	capacity := v1.ResourceList{
		v1.ResourceCPU:              nodeCPU,
		v1.ResourceMemory:           nodeMemory,
		v1.ResourcePods:             *resource.NewQuantity(int64(n.cfg.MaxPods), resource.DecimalSI),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.cfg.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": n.cfg.NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
				"beta.kubernetes.io/os":  "linux",
			},
		},
		Spec: v1.NodeSpec{PodCIDR: n.cfg.PodCIDR},
		Status: v1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses:   []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: n.cfg.NodeIP}},
			DaemonEndpoints: v1.NodeDaemonEndpoints{
				KubeletEndpoint: v1.DaemonEndpoint{Port: int32(n.cfg.Port)},
			},
			NodeInfo: v1.NodeSystemInfo{
				KubeletVersion:          kubeletVersion,
				OperatingSystem:         "linux",
				Architecture:            runtime.GOARCH,
				ContainerRuntimeVersion: "kubelet-lite://" + kubeletVersion,
				OSImage:                 "weft lab",
			},
		},
	}
	if n.cfg.PodCIDR != "" {
		node.Spec.PodCIDRs = []string{n.cfg.PodCIDR}
	}
	n.setConditions(&node.Status)
	return node
}

func (n *nodeAgent) setConditions(st *v1.NodeStatus) {
	now := metav1.NewTime(n.now())
	want := []v1.NodeCondition{
		{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet-lite is posting ready status"},
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
		{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse, Reason: "KubeletHasNoDiskPressure"},
		{Type: v1.NodePIDPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientPID"},
	}
	for _, w := range want {
		w.LastHeartbeatTime = now
		w.LastTransitionTime = now
		found := false
		for i := range st.Conditions {
			c := &st.Conditions[i]
			if c.Type != w.Type {
				continue
			}
			found = true
			if c.Status == w.Status {
				w.LastTransitionTime = c.LastTransitionTime
			}
			*c = w
		}
		if !found {
			st.Conditions = append(st.Conditions, w)
		}
	}
}

// register creates the Node, or brings an existing one up to date.
func (n *nodeAgent) register(ctx context.Context) error {
	want := n.desiredNode()
	created, err := n.client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		// Status on create is ignored by the API server; post it.
		created.Status = want.Status
		_, err = n.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("post node status: %w", err)
		}
		n.log.Info("registered node", "node", n.cfg.NodeName)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", n.cfg.NodeName, err)
	}
	cur, err := n.client.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	if n.cfg.PodCIDR != "" && cur.Spec.PodCIDR == "" {
		cur.Spec.PodCIDR, cur.Spec.PodCIDRs = n.cfg.PodCIDR, []string{n.cfg.PodCIDR}
		if _, err := n.client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("set node pod CIDR: %w", err)
		}
	}
	return n.updateStatus(ctx)
}

// updateStatus refreshes the Node's conditions, addresses and capacity.
func (n *nodeAgent) updateStatus(ctx context.Context) error {
	cur, err := n.client.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	want := n.desiredNode()
	conds := cur.Status.Conditions
	cur.Status = want.Status
	cur.Status.Conditions = conds
	n.setConditions(&cur.Status)
	if _, err := n.client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node status: %w", err)
	}
	return nil
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (n *nodeAgent) renewLease(ctx context.Context, node *v1.Node) error {
	leases := n.client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	now := metav1.NewMicroTime(n.now())
	l, err := leases.Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.cfg.NodeName, Namespace: v1.NamespaceNodeLease},
			Spec: coordv1.LeaseSpec{
				HolderIdentity:       ptr.To(n.cfg.NodeName),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		if node != nil {
			l.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(n.cfg.NodeName)
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// run registers the node (retrying until ctx ends) and then heartbeats.
// ready is closed once the Node exists.
func (n *nodeAgent) run(ctx context.Context, ready chan<- struct{}) {
	for {
		err := n.register(ctx)
		if err == nil {
			break
		}
		n.log.Warn("node registration failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	close(ready)
	node, _ := n.client.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if err := n.renewLease(ctx, node); err != nil {
		n.log.Warn("renew node lease", "err", err)
	}
	leaseTick := time.NewTicker(leaseRenewInterval)
	defer leaseTick.Stop()
	statusTick := time.NewTicker(nodeStatusInterval)
	defer statusTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseTick.C:
			if err := n.renewLease(ctx, node); err != nil && ctx.Err() == nil {
				n.log.Warn("renew node lease", "err", err)
			}
		case <-statusTick.C:
			if err := n.updateStatus(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("update node status", "err", err)
			}
		}
	}
}
