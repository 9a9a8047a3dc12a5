package kube

import (
	"errors"
	"fmt"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
)

// L7Sink receives the kinds the waypoint (L7) configuration is built from;
// *l7.Controller implements it. It must treat the objects as read-only:
// Services, Gateways and AuthorizationPolicies are the same objects the
// ambient model receives.
type L7Sink interface {
	UpsertService(*corev1.Service)
	DeleteService(ns, name string)
	UpsertGateway(*gatewayv1.Gateway)
	DeleteGateway(ns, name string)
	UpsertAuthorizationPolicy(*securityv1.AuthorizationPolicy)
	DeleteAuthorizationPolicy(ns, name string)
	UpsertHTTPRoute(*gatewayv1.HTTPRoute)
	DeleteHTTPRoute(ns, name string)
	UpsertGRPCRoute(*gatewayv1.GRPCRoute)
	DeleteGRPCRoute(ns, name string)
	UpsertDestinationRule(*networkingv1.DestinationRule)
	DeleteDestinationRule(ns, name string)
}

// WatchL7 feeds sink from the watcher's shared Service, Gateway and
// AuthorizationPolicy informers and from new HTTPRoute, GRPCRoute and
// DestinationRule informers. Call it after New and before Run. Istio or
// Gateway clients nil skip their kinds. With
// checkCRDs, kinds whose API is not served are skipped with a warning.
func (w *Watcher) WatchL7(c Clients, sink L7Sink, checkCRDs bool) error {
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
		w.synced = append(w.synced, reg.HasSynced)
		return nil
	}
	errs := []error{add(w.core.Core().V1().Services().Informer(), handler(sink.UpsertService, sink.DeleteService))}
	if w.istio != nil {
		errs = append(errs, add(w.istio.Security().V1().AuthorizationPolicies().Informer(), handler(sink.UpsertAuthorizationPolicy, sink.DeleteAuthorizationPolicy)))
	}
	if w.gateway != nil {
		errs = append(errs, add(w.gateway.Gateway().V1().Gateways().Informer(), handler(sink.UpsertGateway, sink.DeleteGateway)))
	}
	if c.Gateway != nil && w.served(c.Kube, checkCRDs, "gateway.networking.k8s.io/v1", "httproutes", "grpcroutes") {
		if w.gateway == nil {
			w.gateway = gatewayinformers.NewSharedInformerFactoryWithOptions(c.Gateway, 0, gatewayinformers.WithTransform(Transform))
		}
		errs = append(errs,
			add(w.gateway.Gateway().V1().HTTPRoutes().Informer(), handler(sink.UpsertHTTPRoute, sink.DeleteHTTPRoute)),
			add(w.gateway.Gateway().V1().GRPCRoutes().Informer(), handler(sink.UpsertGRPCRoute, sink.DeleteGRPCRoute)))
	}
	if c.Istio != nil && w.served(c.Kube, checkCRDs, "networking.istio.io/v1", "destinationrules") {
		if w.istio == nil {
			w.istio = istioinformers.NewSharedInformerFactoryWithOptions(c.Istio, 0, istioinformers.WithTransform(Transform))
		}
		errs = append(errs, add(w.istio.Networking().V1().DestinationRules().Informer(), handler(sink.UpsertDestinationRule, sink.DeleteDestinationRule)))
	}
	return errors.Join(errs...)
}

// weftAnnotationPrefix marks the route annotations the L7 translation
// reads (weft.dev/fault-abort, weft.dev/ratelimit, ...).
const weftAnnotationPrefix = "weft.dev/"

// slimL7Meta is slimMeta that also keeps the weft.dev/ annotations.
func slimL7Meta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := slimMeta(m)
	for k, v := range m.Annotations {
		if strings.HasPrefix(k, weftAnnotationPrefix) {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out
}

// slimL7 slims the L7 kinds in place (freshly decoded, safe to edit): the
// spec is all used; status is written, never read.
func slimL7(obj any) (any, bool) {
	switch o := obj.(type) {
	case *gatewayv1.HTTPRoute:
		o.ObjectMeta = slimL7Meta(o.ObjectMeta)
		o.Status = gatewayv1.HTTPRouteStatus{}
		return o, true
	case *gatewayv1.GRPCRoute:
		o.ObjectMeta = slimL7Meta(o.ObjectMeta)
		o.Status = gatewayv1.GRPCRouteStatus{}
		return o, true
	case *networkingv1.DestinationRule:
		o.ObjectMeta = slimMeta(o.ObjectMeta)
		o.Status.Reset()
		return o, true
	}
	return obj, false
}
