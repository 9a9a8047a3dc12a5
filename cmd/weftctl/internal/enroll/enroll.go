package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Labels and annotations of the user-facing API.
const (
	DataplaneModeLabel    = "istio.io/dataplane-mode"
	DataplaneModeAmbient  = "ambient"
	DataplaneModeNone     = "none"
	RedirectionAnnotation = "ambient.istio.io/redirection"
	RedirectionEnabled    = "enabled"
)

// SetLabel labels namespace ns for the mesh (enroll) or removes the label.
func SetLabel(ctx context.Context, kc kubernetes.Interface, ns string, enroll bool) error {
	var value any
	if enroll {
		value = DataplaneModeAmbient
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{DataplaneModeLabel: value}}})
	_, err := kc.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "weftctl"})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %q not found; list namespaces with `kubectl get namespaces`", ns)
	}
	if err != nil {
		return fmt.Errorf("label namespace %s: %w", ns, err)
	}
	return nil
}

// Stuck is a pod that has not reached the wanted redirection state.
type Stuck struct {
	Pod    string `json:"pod"`
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// InMesh reports whether pod p should be captured when its namespace is
// enrolled: not opted out, not host-network, not finished.
func InMesh(p *corev1.Pod) bool {
	if p.Labels[DataplaneModeLabel] == DataplaneModeNone || p.Spec.HostNetwork {
		return false
	}
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// Check lists the pods of ns whose redirection annotation does not match
// enroll (enabled when enrolling, absent when leaving), with a reason each.
func Check(ctx context.Context, kc kubernetes.Interface, systemNS, ns string, enroll bool) ([]Stuck, error) {
	pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", ns, err)
	}
	agents, _ := kc.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{LabelSelector: "app=weft-cni-agent"})
	agentOn := map[string]*corev1.Pod{}
	if agents != nil {
		for i := range agents.Items {
			agentOn[agents.Items[i].Spec.NodeName] = &agents.Items[i]
		}
	}
	var out []Stuck
	for i := range pods.Items {
		p := &pods.Items[i]
		ann, has := p.Annotations[RedirectionAnnotation]
		if !enroll {
			if has {
				out = append(out, Stuck{Pod: p.Name, Node: p.Spec.NodeName, Reason: fmt.Sprintf("still annotated %s=%s; the node agent removes it when it releases the pod", RedirectionAnnotation, ann)})
			}
			continue
		}
		if !InMesh(p) || ann == RedirectionEnabled {
			continue
		}
		out = append(out, Stuck{Pod: p.Name, Node: p.Spec.NodeName, Reason: reason(p, ann, has, agentOn[p.Spec.NodeName])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out, nil
}

func reason(p *corev1.Pod, ann string, has bool, agent *corev1.Pod) string {
	switch {
	case p.Spec.NodeName == "":
		return "not scheduled yet"
	case p.Status.Phase == corev1.PodPending && !has:
		return "pod is Pending; it is enrolled once its sandbox is up"
	case agent == nil:
		return fmt.Sprintf("no weft-cni-agent pod on node %s: the node agent is not running there", p.Spec.NodeName)
	case !ready(agent):
		return fmt.Sprintf("weft-cni-agent %s on node %s is not ready (is ztunnel on that node up?)", agent.Name, p.Spec.NodeName)
	case has && ann != RedirectionEnabled:
		return fmt.Sprintf("annotated %s=%s: the agent set up redirection but ztunnel on node %s has not taken the pod yet", RedirectionAnnotation, ann, p.Spec.NodeName)
	}
	return fmt.Sprintf("no %s annotation: the node agent on %s has not enrolled it (see `kubectl -n %s describe pod %s` events)", RedirectionAnnotation, p.Spec.NodeName, p.Namespace, p.Name)
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkTimeout bounds one Check inside Wait.
const checkTimeout = 15 * time.Second

// checkContext is the context of one Check inside Wait: it ends when ctx is
// cancelled or after checkTimeout, but not when ctx's deadline passes, so
// that the wait's timeout ends the waiting and not a check in flight
// (client-go's rate limiter refuses a request that would end past the
// deadline, well before ctx.Err() is set).
func checkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			cancel()
		}
	})
	return cctx, func() { stop(); cancel() }
}

// Wait polls Check every interval until nothing is stuck or ctx ends; it
// returns the last stuck list (empty on success). ctx's deadline ends the
// waiting, not a Check in flight; a Check cut short by cancellation yields
// the list before it.
func Wait(ctx context.Context, kc kubernetes.Interface, systemNS, ns string, enroll bool, interval time.Duration) ([]Stuck, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last []Stuck
	for {
		cctx, cancel := checkContext(ctx)
		stuck, err := Check(cctx, kc, systemNS, ns, enroll)
		cancel()
		if err != nil && ctx.Err() != nil && last != nil {
			return last, nil
		}
		if err != nil || len(stuck) == 0 {
			return stuck, err
		}
		last = stuck
		select {
		case <-ctx.Done():
			return stuck, nil
		case <-t.C:
		}
	}
}
