package kube

import (
	"github.com/weftmesh/weft/istiod-lite/model"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Annotations the model reads; all others are dropped.
var keptAnnotations = []string{
	"ambient.istio.io/redirection",
	"sidecar.istio.io/status",
	"istio.io/dry-run",
}

// slimMeta keeps identity, labels, the annotations we read, the controller
// owner reference and the timestamps; managed fields and the rest go.
func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Generation:        m.Generation,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
		Labels:            m.Labels,
	}
	for _, a := range keptAnnotations {
		if v, ok := m.Annotations[a]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[a] = v
		}
	}
	for _, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			out.OwnerReferences = []metav1.OwnerReference{{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID, Controller: o.Controller}}
			break
		}
	}
	return out
}

// slimPod keeps the pod in the model's compact form, sharing equal label
// and annotation maps and strings among pods (the model and the CA read
// them, never write).
func slimPod(p *corev1.Pod) *model.Pod {
	p.ObjectMeta = slimMeta(p.ObjectMeta)
	p.Labels = podLabels.intern(p.Labels)
	p.Annotations = podAnnotations.intern(p.Annotations)
	p.Namespace = internString(p.Namespace)
	p.Spec.NodeName = internString(p.Spec.NodeName)
	p.Spec.ServiceAccountName = internString(p.Spec.ServiceAccountName)
	return model.PodFrom(p)
}

func slimService(s *corev1.Service) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: slimMeta(s.ObjectMeta),
		Spec: corev1.ServiceSpec{
			Type:                s.Spec.Type,
			Selector:            s.Spec.Selector,
			Ports:               s.Spec.Ports,
			ClusterIP:           s.Spec.ClusterIP,
			ClusterIPs:          s.Spec.ClusterIPs,
			IPFamilies:          s.Spec.IPFamilies,
			TrafficDistribution: s.Spec.TrafficDistribution,
		},
	}
}

func slimSlice(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	out := &discoveryv1.EndpointSlice{ObjectMeta: slimMeta(s.ObjectMeta), AddressType: s.AddressType, Ports: s.Ports}
	for _, e := range s.Endpoints {
		out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{Addresses: e.Addresses, Conditions: discoveryv1.EndpointConditions{Ready: e.Conditions.Ready}, NodeName: e.NodeName, TargetRef: e.TargetRef})
	}
	return out
}

func slimGateway(g *gatewayv1.Gateway) *gatewayv1.Gateway {
	out := &gatewayv1.Gateway{ObjectMeta: slimMeta(g.ObjectMeta)}
	out.Spec.GatewayClassName = g.Spec.GatewayClassName
	for _, l := range g.Spec.Listeners {
		out.Spec.Listeners = append(out.Spec.Listeners, gatewayv1.Listener{Name: l.Name, Port: l.Port, Protocol: l.Protocol})
	}
	out.Status.Addresses = g.Status.Addresses
	return out
}

// Transform slims every watched kind (pods become *model.Pod); it is the
// informers' transform function and is safe for concurrent use.
func Transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return slimPod(o), nil
	case *corev1.Service:
		return slimService(o), nil
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: slimMeta(o.ObjectMeta)}, nil
	case *discoveryv1.EndpointSlice:
		return slimSlice(o), nil
	case *gatewayv1.Gateway:
		return slimGateway(o), nil
	case *securityv1.AuthorizationPolicy:
		o.ObjectMeta = slimMeta(o.ObjectMeta) // the spec is all used; freshly decoded, safe to edit
		o.Status.Reset()
		return o, nil
	case *securityv1.PeerAuthentication:
		o.ObjectMeta = slimMeta(o.ObjectMeta)
		o.Status.Reset()
		return o, nil
	case cache.DeletedFinalStateUnknown:
		return o, nil
	}
	if o, ok := slimL7(obj); ok {
		return o, nil
	}
	return obj, nil
}
