package l7

import (
	"strings"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"google.golang.org/protobuf/types/known/durationpb"
	netv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
)

// trafficSet is one DestinationRule translated.
type trafficSet struct {
	ref     ObjectRef
	created time.Time
	host    string // the Service hostname it applies to
	policy  *l7api.TrafficPolicy
}

// resolveHost turns a DestinationRule host into a Service, as Istio does:
// a short name ("reviews") is a Service in the rule's namespace; any other
// host must be a full "<name>.<namespace>.svc.<domain>". ok is false when
// the host names no Kubernetes Service (wildcards, external hosts).
func (c Config) resolveHost(host, ruleNS string) (ns, name string, ok bool) {
	if host == "" || strings.Contains(host, "*") {
		return "", "", false
	}
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1:
		return ruleNS, parts[0], true
	case len(parts) > 3 && parts[2] == "svc" && strings.Join(parts[3:], ".") == c.DomainSuffix:
		return parts[1], parts[0], true
	}
	return "", "", false
}

// translateDestinationRule turns a DestinationRule's top-level
// trafficPolicy into a TrafficPolicy for its Service.
func (c Config) translateDestinationRule(dr *networkingv1.DestinationRule, p *problems) *trafficSet {
	spec := &dr.Spec
	ts := &trafficSet{
		ref:     ObjectRef{Kind: "DestinationRule", APIVersion: networkingv1.SchemeGroupVersion.String(), Namespace: dr.Namespace, Name: dr.Name, UID: dr.UID, Generation: dr.Generation},
		created: dr.CreationTimestamp.Time,
	}
	ns, name, ok := c.resolveHost(spec.GetHost(), dr.Namespace)
	if !ok {
		p.reject("spec.host", "%q does not name a Kubernetes Service (a short name in this namespace, or name.namespace.svc.%s; no wildcards)", spec.GetHost(), c.DomainSuffix)
		return ts
	}
	if spec.GetWorkloadSelector() != nil {
		p.reject("spec.workloadSelector", "a DestinationRule with a workloadSelector applies to sidecars, not waypoints")
		return ts
	}
	ts.host = c.Hostname(ns, name)
	out := &l7api.TrafficPolicy{Service: c.serviceRef(ns, name)}
	tp := spec.GetTrafficPolicy()
	if len(spec.GetSubsets()) > 0 {
		p.warn("spec.subsets", "subsets are not supported by waypoints; ignored")
	}
	if len(tp.GetPortLevelSettings()) > 0 {
		p.warn("spec.trafficPolicy.portLevelSettings", "not supported by waypoints; ignored")
	}
	if tp.GetTls() != nil {
		p.warn("spec.trafficPolicy.tls", "ignored: waypoints always use mesh mTLS (HBONE)")
	}
	if cp := tp.GetConnectionPool(); cp != nil {
		out.ConnectionPool = &l7api.ConnectionPool{
			MaxConnections:           nonNegative(cp.GetTcp().GetMaxConnections(), "spec.trafficPolicy.connectionPool.tcp.maxConnections", p),
			MaxPendingRequests:       nonNegative(cp.GetHttp().GetHttp1MaxPendingRequests(), "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests", p),
			MaxRequests:              nonNegative(cp.GetHttp().GetHttp2MaxRequests(), "spec.trafficPolicy.connectionPool.http.http2MaxRequests", p),
			MaxRequestsPerConnection: nonNegative(cp.GetHttp().GetMaxRequestsPerConnection(), "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection", p),
			ConnectTimeout:           positiveDuration(cp.GetTcp().GetConnectTimeout(), "spec.trafficPolicy.connectionPool.tcp.connectTimeout", p),
		}
		if cp.GetHttp().GetMaxRetries() != 0 {
			p.warn("spec.trafficPolicy.connectionPool.http.maxRetries", "ignored; use the weft.dev/retry-budget route annotation")
		}
	}
	if od := tp.GetOutlierDetection(); od != nil {
		o := &l7api.OutlierDetection{
			Interval:           positiveDuration(od.GetInterval(), "spec.trafficPolicy.outlierDetection.interval", p),
			BaseEjectionTime:   positiveDuration(od.GetBaseEjectionTime(), "spec.trafficPolicy.outlierDetection.baseEjectionTime", p),
			MaxEjectionPercent: nonNegative(od.GetMaxEjectionPercent(), "spec.trafficPolicy.outlierDetection.maxEjectionPercent", p),
		}
		if v := od.GetConsecutive_5XxErrors(); v != nil {
			o.Consecutive_5XxErrors = v.GetValue()
		} else if n := od.GetConsecutiveErrors(); n > 0 { //nolint:staticcheck // deprecated field, still honoured as Istio honours it
			o.Consecutive_5XxErrors = uint32(n)
		}
		if v := od.GetConsecutiveGatewayErrors(); v != nil {
			o.ConsecutiveGatewayErrors = v.GetValue()
		}
		if o.MaxEjectionPercent > 100 {
			p.reject("spec.trafficPolicy.outlierDetection.maxEjectionPercent", "%d is more than 100", o.MaxEjectionPercent)
		}
		out.OutlierDetection = o
	}
	if lb := tp.GetLoadBalancer(); lb != nil {
		switch {
		case lb.GetConsistentHash() != nil:
			p.warn("spec.trafficPolicy.loadBalancer.consistentHash", "not supported by waypoints; the default (peak-EWMA) is used")
		case lb.GetSimple() != netv1alpha3.LoadBalancerSettings_UNSPECIFIED:
			switch lb.GetSimple() {
			case netv1alpha3.LoadBalancerSettings_ROUND_ROBIN:
				out.LoadBalancer = &l7api.LoadBalancer{Policy: l7api.LoadBalancer_ROUND_ROBIN}
			case netv1alpha3.LoadBalancerSettings_LEAST_REQUEST, netv1alpha3.LoadBalancerSettings_LEAST_CONN: //nolint:staticcheck // LEAST_CONN is Istio's deprecated alias of LEAST_REQUEST
				out.LoadBalancer = &l7api.LoadBalancer{Policy: l7api.LoadBalancer_LEAST_REQUEST}
			case netv1alpha3.LoadBalancerSettings_RANDOM:
				out.LoadBalancer = &l7api.LoadBalancer{Policy: l7api.LoadBalancer_RANDOM}
			default:
				p.warn("spec.trafficPolicy.loadBalancer.simple", "%s is not supported by waypoints; the default (peak-EWMA) is used", lb.GetSimple())
			}
		}
	}
	ts.policy = out
	return ts
}

func nonNegative(v int32, field string, p *problems) uint32 {
	if v < 0 {
		p.reject(field, "must not be negative")
		return 0
	}
	return uint32(v)
}

func positiveDuration(d *durationpb.Duration, field string, p *problems) *durationpb.Duration {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil || d.AsDuration() <= 0 {
		p.reject(field, "must be a positive duration")
		return nil
	}
	return durationpb.New(d.AsDuration())
}
