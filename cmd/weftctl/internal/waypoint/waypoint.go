package waypoint

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"
)

// The user-facing names of the waypoint API.
const (
	ClassName        = "istio-waypoint"
	ForLabel         = "istio.io/waypoint-for"
	UseWaypointLabel = "istio.io/use-waypoint"
	RevisionLabel    = "istio.io/rev"
	ListenerName     = "mesh"
	HBONEPort        = 15008
	HBONEProtocol    = "HBONE"
	DefaultName      = "waypoint"
)

// ValidFor lists the accepted --for values.
var ValidFor = []string{"service", "workload", "all", "none"}

// Spec describes one waypoint to generate.
type Spec struct {
	Name      string
	Namespace string
	// For is the traffic type: service (default), workload, all or none.
	For string
	// Revision, when set, is written as the istio.io/rev label.
	Revision string
}

// Validate checks the spec and fills defaults.
func (s *Spec) Validate() error {
	if s.Name == "" {
		s.Name = DefaultName
	}
	if s.For == "" {
		s.For = "service"
	}
	for _, v := range ValidFor {
		if s.For == v {
			return nil
		}
	}
	return fmt.Errorf("invalid --for %q: use one of service, workload, all, none", s.For)
}

// Gateway returns the waypoint's Gateway.
func Gateway(s Spec) *gwv1.Gateway {
	labels := map[string]string{ForLabel: s.For}
	if s.Revision != "" {
		labels[RevisionLabel] = s.Revision
	}
	return &gwv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: ClassName,
			Listeners:        []gwv1.Listener{{Name: ListenerName, Port: HBONEPort, Protocol: HBONEProtocol}},
		},
	}
}

// YAML renders gw as a manifest, without empty status or server fields.
func YAML(gw *gwv1.Gateway) ([]byte, error) {
	b, err := json.Marshal(gw)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return yaml.Marshal(m)
}

// Apply creates gw, or updates the spec and labels of an existing one.
func Apply(ctx context.Context, gc gatewayclient.Interface, gw *gwv1.Gateway) error {
	cl := gc.GatewayV1().Gateways(gw.Namespace)
	cur, err := cl.Get(ctx, gw.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cl.Create(ctx, gw, metav1.CreateOptions{FieldManager: "weftctl"})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("create waypoint %s/%s: %w (are the Gateway API CRDs installed? `weftctl check`)", gw.Namespace, gw.Name, err)
		}
		if err != nil {
			return fmt.Errorf("create waypoint %s/%s: %w", gw.Namespace, gw.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get waypoint %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	cur.Spec = gw.Spec
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	for k, v := range gw.Labels {
		cur.Labels[k] = v
	}
	if _, err := cl.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "weftctl"}); err != nil {
		return fmt.Errorf("update waypoint %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	return nil
}

// EnrollNamespace labels namespace ns istio.io/use-waypoint=name. A
// different existing waypoint is kept unless overwrite.
func EnrollNamespace(ctx context.Context, kc kubernetes.Interface, ns, name string, overwrite bool) error {
	n, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if cur := n.Labels[UseWaypointLabel]; cur != "" && cur != name && !overwrite {
		return fmt.Errorf("namespace %s already uses waypoint %q; pass --overwrite to switch it to %q", ns, cur, name)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{UseWaypointLabel: name}}})
	if _, err := kc.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "weftctl"}); err != nil {
		return fmt.Errorf("label namespace %s: %w", ns, err)
	}
	return nil
}

// Programmed reports the Programmed condition of gw: whether it is true
// for gw's current generation, and its reason and message. A condition
// written for an older generation (the controller has not seen the last
// change yet) is not true.
func Programmed(gw *gwv1.Gateway) (bool, string) {
	c := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
	if c == nil {
		return false, "no Programmed condition yet (is a controller for GatewayClass istio-waypoint running?)"
	}
	if c.ObservedGeneration < gw.Generation {
		return false, fmt.Sprintf("status is for generation %d, the Gateway is at %d (the controller has not caught up yet)", c.ObservedGeneration, gw.Generation)
	}
	return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
}

// WaitProgrammed polls until gw is Programmed or ctx ends.
func WaitProgrammed(ctx context.Context, gc gatewayclient.Interface, ns, name string, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := "not found"
	for {
		gw, err := gc.GatewayV1().Gateways(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			var ok bool
			if ok, last = Programmed(gw); ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waypoint %s/%s is not programmed: %s (`kubectl -n %s describe gateway %s`)", ns, name, last, ns, name)
		case <-t.C:
		}
	}
}

// List returns the waypoints of ns ("" for all), sorted.
func List(ctx context.Context, gc gatewayclient.Interface, ns string) ([]gwv1.Gateway, error) {
	l, err := gc.GatewayV1().Gateways(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list gateways: %w", err)
	}
	var out []gwv1.Gateway
	for _, g := range l.Items {
		if g.Spec.GatewayClassName == ClassName {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Revision is the waypoint's istio.io/rev label, or "default".
func Revision(gw *gwv1.Gateway) string {
	if r := gw.Labels[RevisionLabel]; r != "" {
		return r
	}
	return "default"
}
