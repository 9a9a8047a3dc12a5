package l7config

import (
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// ResourceError is a rejected resource; its message names the type, the
// resource and the field.
type ResourceError struct {
	Type, Name, Field string
	Err               error
}

func (e *ResourceError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s %q: %v", e.Type, e.Name, e.Err)
	}
	return fmt.Sprintf("%s %q: %s: %v", e.Type, e.Name, e.Field, e.Err)
}

func (e *ResourceError) Unwrap() error { return e.Err }

func resourceErr(typ, name, field string, err error) error {
	return &ResourceError{Type: typ, Name: name, Field: field, Err: err}
}

func fieldf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// checkRouteConfig checks what the router does not: the xDS name.
func checkRouteConfig(name string, rc *l7api.RouteConfig) error {
	if rc.GetService().GetHostname() != name {
		return resourceErr("RouteConfig", name, "service.hostname",
			fmt.Errorf("%q does not match the resource name", rc.GetService().GetHostname()))
	}
	for port, p := range rc.GetPortProtocols() {
		if port == 0 || port > 65535 {
			return resourceErr("RouteConfig", name, fieldf("port_protocols[%d]", port), fmt.Errorf("not a port"))
		}
		if _, ok := l7api.Protocol_name[int32(p)]; !ok {
			return resourceErr("RouteConfig", name, fieldf("port_protocols[%d]", port), fmt.Errorf("unknown protocol %d", p))
		}
	}
	return nil
}

func checkL7Policy(name string, p *l7api.L7Policy) error {
	if want := p.GetNamespace() + "/" + p.GetName(); want != name {
		return resourceErr("L7Policy", name, "namespace/name", fmt.Errorf("%q does not match the resource name", want))
	}
	return nil
}

func checkTrafficPolicy(name string, tp *l7api.TrafficPolicy) error {
	bad := func(field string, err error) error { return resourceErr("TrafficPolicy", name, field, err) }
	if tp.GetService().GetHostname() != name {
		return bad("service.hostname", fmt.Errorf("%q does not match the resource name", tp.GetService().GetHostname()))
	}
	if err := checkDuration(tp.GetConnectionPool().GetConnectTimeout()); err != nil {
		return bad("connection_pool.connect_timeout", err)
	}
	if od := tp.GetOutlierDetection(); od != nil {
		if od.GetMaxEjectionPercent() > 100 {
			return bad("outlier_detection.max_ejection_percent", fmt.Errorf("%d is over 100", od.GetMaxEjectionPercent()))
		}
		if err := checkDuration(od.GetInterval()); err != nil {
			return bad("outlier_detection.interval", err)
		}
		if err := checkDuration(od.GetBaseEjectionTime()); err != nil {
			return bad("outlier_detection.base_ejection_time", err)
		}
	}
	if lb := tp.GetLoadBalancer(); lb != nil {
		if _, ok := l7api.LoadBalancer_Policy_name[int32(lb.GetPolicy())]; !ok {
			return bad("load_balancer.policy", fmt.Errorf("unknown policy %d", lb.GetPolicy()))
		}
	}
	return nil
}

// checkDuration accepts an absent duration or a valid, non-negative one
// (zero means the default).
func checkDuration(d *durationpb.Duration) error {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return err
	}
	if d.AsDuration() < 0 {
		return fmt.Errorf("%v is negative", d.AsDuration())
	}
	return nil
}
