package waypoint

import (
	"context"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Condition messages and reasons the controller writes.
const (
	// AcceptedMessage is the Accepted condition's message.
	AcceptedMessage = "Handled by Weft istiod-lite"
	// ReasonPending is Programmed=False's reason while the waypoint has
	// no ready replica or no address yet.
	ReasonPending = string(gatewayv1.GatewayReasonPending)
)

// Readiness is what the controller knows of a waypoint's objects.
type Readiness struct {
	// Programmed is true once the Deployment has a ready replica and the
	// Service has a cluster IP.
	Programmed bool
	// Reason and Message explain Programmed.
	Reason, Message string
	// Address is the Service's cluster IP ("" before it has one).
	Address string
}

// ReadinessOf derives gw's readiness from its Deployment and Service (nil
// when not there yet).
func ReadinessOf(gw *gatewayv1.Gateway, dep *appsv1.Deployment, svc *corev1.Service) Readiness {
	key := gw.Namespace + "/" + gw.Name
	var r Readiness
	if svc != nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		r.Address = svc.Spec.ClusterIP
	}
	switch {
	case dep == nil:
		r.Reason, r.Message = ReasonPending, fmt.Sprintf("waiting for Deployment %s to be created", key)
	case dep.Status.ReadyReplicas == 0:
		r.Reason, r.Message = ReasonPending, fmt.Sprintf("Deployment %s has no ready replica yet", key)
	case r.Address == "":
		r.Reason, r.Message = ReasonPending, fmt.Sprintf("Service %s has no cluster IP yet", key)
	default:
		r.Programmed = true
		r.Reason = string(gatewayv1.GatewayReasonProgrammed)
		r.Message = fmt.Sprintf("Deployment %s ready (%d/%d replicas), address %s", key, dep.Status.ReadyReplicas, dep.Status.Replicas, r.Address)
	}
	return r
}

// StatusFor returns cur updated with the controller's conditions and
// addresses for generation gen. Conditions keep their transition time
// while their status is unchanged; conditions of other types are kept.
func StatusFor(cur gatewayv1.GatewayStatus, gen int64, r Readiness, now metav1.Time) gatewayv1.GatewayStatus {
	st := *cur.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: string(gatewayv1.GatewayConditionAccepted), Status: metav1.ConditionTrue,
		Reason: string(gatewayv1.GatewayReasonAccepted), Message: AcceptedMessage,
		ObservedGeneration: gen, LastTransitionTime: now,
	})
	prog := metav1.Condition{
		Type: string(gatewayv1.GatewayConditionProgrammed), Status: metav1.ConditionFalse,
		Reason: r.Reason, Message: r.Message, ObservedGeneration: gen, LastTransitionTime: now,
	}
	if r.Programmed {
		prog.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, prog)
	st.Addresses = nil
	if r.Programmed {
		ip := gatewayv1.IPAddressType
		st.Addresses = []gatewayv1.GatewayStatusAddress{{Type: &ip, Value: r.Address}}
	}
	return st
}

// report writes gw's status when it differs from what this controller
// last wrote for it.
func (c *Controller) report(ctx context.Context, key string, gw *gatewayv1.Gateway) error {
	dep, err := c.deployments.Deployments(gw.Namespace).Get(gw.Name)
	if err != nil || !ownedBy(dep, gw) {
		dep = nil
	}
	svc, err := c.services.Services(gw.Namespace).Get(gw.Name)
	if err != nil || !ownedBy(svc, gw) {
		svc = nil
	}
	r := ReadinessOf(gw, dep, svc)
	sig := fmt.Sprintf("%s|%d|%+v", gw.UID, gw.Generation, r)
	c.mu.Lock()
	same := c.reported[key] == sig
	c.mu.Unlock()
	if same {
		return nil
	}
	// The informer's Gateways are slimmed (no conditions): read the
	// current status, and write only on a change.
	gws := c.gwClient.Gateways(gw.Namespace)
	cur, err := gws.Get(ctx, gw.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get gateway %s: %w", key, err)
	}
	if cur.UID != gw.UID {
		return fmt.Errorf("gateway %s was replaced; waiting for the informer to catch up", key)
	}
	st := StatusFor(cur.Status, cur.Generation, r, metav1.NewTime(c.cfg.Now()))
	if !reflect.DeepEqual(st, cur.Status) {
		cur = cur.DeepCopy()
		cur.Status = st
		if _, err := gws.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("update gateway %s status: %w", key, err)
		}
		c.cfg.Log.Info("waypoint status", "gateway", key, "programmed", r.Programmed, "reason", r.Reason, "address", r.Address)
	}
	c.mu.Lock()
	c.reported[key] = fmt.Sprintf("%s|%d|%+v", cur.UID, cur.Generation, r)
	c.mu.Unlock()
	return nil
}
