package l7

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// RouteControllerName is the controllerName of the route status parents
// istiod-lite writes (the waypoint GatewayClass's controller).
const RouteControllerName gatewayv1.GatewayController = "istio.io/mesh-controller"

// Event reasons.
const (
	ReasonInvalid     = "InvalidWaypointConfig"     // the object was skipped
	ReasonUnsupported = "UnsupportedWaypointConfig" // parts were ignored
)

// KubeReporter publishes Reports to the API server: a Warning Event on the
// object naming the fields, and for HTTPRoutes and GRPCRoutes the status
// of each Service parent (Accepted, ResolvedRefs) under
// RouteControllerName, leaving other controllers' parents alone. Report
// never blocks; Run sends the events and writes the status.
type KubeReporter struct {
	gw          gatewayclient.Interface
	kube        kubernetes.Interface
	log         *slog.Logger
	broadcaster record.EventBroadcaster
	events      record.EventRecorder
	now         func() time.Time

	mu      sync.Mutex
	pending map[string]Report
	kick    chan struct{}
}

var _ Reporter = (*KubeReporter)(nil)

// NewKubeReporter returns a reporter that records events through kube
// and writes route status through gw (nil skips status).
func NewKubeReporter(kube kubernetes.Interface, gw gatewayclient.Interface, log *slog.Logger) *KubeReporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := record.NewBroadcaster()
	return &KubeReporter{
		gw: gw, kube: kube, log: log,
		broadcaster: b,
		events:      b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "istiod-lite"}),
		now:         time.Now,
		pending:     map[string]Report{},
		kick:        make(chan struct{}, 1),
	}
}

// Report queues r for Run: a newer report of the same object replaces an
// unsent one.
func (k *KubeReporter) Report(r Report) {
	k.mu.Lock()
	k.pending[r.Ref.String()] = r
	k.mu.Unlock()
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// event records a Warning Event naming the problems, if any.
func (k *KubeReporter) event(r Report) {
	if len(r.Problems) == 0 {
		return
	}
	ref := &corev1.ObjectReference{Kind: r.Ref.Kind, APIVersion: r.Ref.APIVersion, Namespace: r.Ref.Namespace, Name: r.Ref.Name, UID: r.Ref.UID}
	reason := ReasonUnsupported
	if r.Rejected {
		reason = ReasonInvalid
	}
	k.events.Event(ref, corev1.EventTypeWarning, reason, truncate(r.Message(), 1024))
}

// Run sends events and writes queued route status until ctx ends, then
// stops the event broadcaster (reports made before Run wait for it). A
// failed status write is retried after a second.
func (k *KubeReporter) Run(ctx context.Context) error {
	k.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.kube.CoreV1().Events("")})
	defer k.broadcaster.Shutdown()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.kick:
		}
		k.mu.Lock()
		batch := k.pending
		k.pending = map[string]Report{}
		k.mu.Unlock()
		failed := false
		for _, key := range slices.Sorted(maps.Keys(batch)) {
			r := batch[key]
			if !r.retry {
				k.event(r)
			}
			if err := k.writeStatus(ctx, r); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				k.log.Warn("write route status", "route", key, "err", err)
				k.mu.Lock()
				if _, newer := k.pending[key]; !newer {
					r.retry = true // the event went out already
					k.pending[key] = r
				}
				k.mu.Unlock()
				failed = true
			}
		}
		if failed {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			select {
			case k.kick <- struct{}{}:
			default:
			}
		}
	}
}

func (k *KubeReporter) writeStatus(ctx context.Context, r Report) error {
	// A route report without parents withdraws the entries of a route that
	// no longer has Service parents.
	if k.gw == nil || (r.Ref.Kind != "HTTPRoute" && r.Ref.Kind != "GRPCRoute") {
		return nil
	}
	now := metav1.NewTime(k.now())
	mine := RouteParentStatuses(r, now)
	merge := func(cur []gatewayv1.RouteParentStatus) ([]gatewayv1.RouteParentStatus, bool) {
		var out []gatewayv1.RouteParentStatus
		var old []gatewayv1.RouteParentStatus
		for _, p := range cur {
			if p.ControllerName == RouteControllerName {
				old = append(old, p)
			} else {
				out = append(out, p)
			}
		}
		// Keep transition times of unchanged conditions.
		for i := range mine {
			for _, o := range old {
				if parentRefEqual(o.ParentRef, mine[i].ParentRef) {
					for j, c := range mine[i].Conditions {
						if oc := meta.FindStatusCondition(o.Conditions, c.Type); oc != nil && oc.Status == c.Status {
							mine[i].Conditions[j].LastTransitionTime = oc.LastTransitionTime
						}
					}
				}
			}
		}
		out = append(out, mine...)
		return out, !statusEqual(old, mine)
	}
	ns, name := r.Ref.Namespace, r.Ref.Name
	switch r.Ref.Kind {
	case "HTTPRoute":
		cur, err := k.gw.GatewayV1().HTTPRoutes(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if cur.UID != r.Ref.UID || cur.Generation != r.Ref.Generation {
			return nil // a newer generation gets its own report
		}
		parents, changed := merge(cur.Status.Parents)
		if !changed {
			return nil
		}
		cur.Status.Parents = parents
		if _, err := k.gw.GatewayV1().HTTPRoutes(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: "istiod-lite"}); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
	case "GRPCRoute":
		cur, err := k.gw.GatewayV1().GRPCRoutes(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if cur.UID != r.Ref.UID || cur.Generation != r.Ref.Generation {
			return nil
		}
		parents, changed := merge(cur.Status.Parents)
		if !changed {
			return nil
		}
		cur.Status.Parents = parents
		if _, err := k.gw.GatewayV1().GRPCRoutes(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: "istiod-lite"}); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
	}
	return nil
}

// RouteParentStatuses is the status istiod-lite reports for each Service
// parent of a route: Accepted (False with the reason when the parent or
// the whole route is not used) and ResolvedRefs (False when a backendRef
// is of an unsupported kind or namespace).
func RouteParentStatuses(r Report, now metav1.Time) []gatewayv1.RouteParentStatus {
	var out []gatewayv1.RouteParentStatus
	refsOK, refsReason, refsMsg := true, string(gatewayv1.RouteReasonResolvedRefs), "all backendRefs resolved"
	for _, p := range r.Problems {
		if strings.Contains(p.Field, "backendRef") && (strings.HasSuffix(p.Field, ".kind") || strings.HasSuffix(p.Field, ".namespace")) {
			refsOK, refsMsg = false, p.Error()
			refsReason = string(gatewayv1.RouteReasonInvalidKind)
			if strings.HasSuffix(p.Field, ".namespace") {
				refsReason = string(gatewayv1.RouteReasonRefNotPermitted)
			}
			break
		}
	}
	for _, ps := range r.Parents {
		acc := metav1.Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue,
			Reason: string(gatewayv1.RouteReasonAccepted), Message: "attached to the Service's waypoint configuration",
			ObservedGeneration: r.Ref.Generation, LastTransitionTime: now}
		switch {
		case ps.Problem != "":
			acc.Status, acc.Reason, acc.Message = metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue), ps.Problem
		case r.Rejected:
			acc.Status, acc.Reason, acc.Message = metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue), truncate(r.Message(), 1024)
		}
		res := metav1.Condition{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: metav1.ConditionTrue,
			Reason: refsReason, Message: truncate(refsMsg, 1024), ObservedGeneration: r.Ref.Generation, LastTransitionTime: now}
		if !refsOK {
			res.Status = metav1.ConditionFalse
		}
		out = append(out, gatewayv1.RouteParentStatus{ParentRef: ps.Ref, ControllerName: RouteControllerName, Conditions: []metav1.Condition{acc, res}})
	}
	return out
}

func parentRefEqual(a, b gatewayv1.ParentReference) bool {
	return a.Name == b.Name && deref(a.Kind) == deref(b.Kind) && deref(a.Group) == deref(b.Group) &&
		deref(a.Namespace) == deref(b.Namespace) && deref(a.SectionName) == deref(b.SectionName) &&
		((a.Port == nil && b.Port == nil) || (a.Port != nil && b.Port != nil && *a.Port == *b.Port))
}

// statusEqual compares parent statuses ignoring transition times.
func statusEqual(a, b []gatewayv1.RouteParentStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !parentRefEqual(a[i].ParentRef, b[i].ParentRef) || len(a[i].Conditions) != len(b[i].Conditions) {
			return false
		}
		for j, c := range a[i].Conditions {
			d := b[i].Conditions[j]
			if c.Type != d.Type || c.Status != d.Status || c.Reason != d.Reason || c.Message != d.Message || c.ObservedGeneration != d.ObservedGeneration {
				return false
			}
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
