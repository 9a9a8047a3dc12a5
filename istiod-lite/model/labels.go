package model

import (
	"strings"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
)

// canonicalName follows Istio: service.istio.io/canonical-name,
// app.kubernetes.io/name, app, else the owning workload's name.
func canonicalName(labels map[string]string, workloadName string) string {
	for _, l := range []string{"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"} {
		if v := labels[l]; v != "" {
			return v
		}
	}
	return workloadName
}

// canonicalRevision follows Istio: service.istio.io/canonical-revision,
// app.kubernetes.io/version, version, else "latest".
func canonicalRevision(labels map[string]string) string {
	for _, l := range []string{"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"} {
		if v := labels[l]; v != "" {
			return v
		}
	}
	return "latest"
}

// workloadOwner derives the telemetry workload type and name from the
// pod's controller: a ReplicaSet is reported as its Deployment (name
// without the pod-template-hash suffix), a Job as JOB, other controllers as
// DEPLOYMENT with their own name, and bare pods as POD.
func workloadOwner(p *Pod) (workloadapi.WorkloadType, string) {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		switch o.Kind {
		case "ReplicaSet":
			if h := p.Labels["pod-template-hash"]; h != "" {
				if n, ok := strings.CutSuffix(o.Name, "-"+h); ok {
					return workloadapi.WorkloadType_DEPLOYMENT, n
				}
			}
			return workloadapi.WorkloadType_DEPLOYMENT, o.Name
		case "Job":
			return workloadapi.WorkloadType_JOB, o.Name
		default:
			return workloadapi.WorkloadType_DEPLOYMENT, o.Name
		}
	}
	return workloadapi.WorkloadType_POD, p.Name
}

func appProtocol(ap *string) workloadapi.AppProtocol {
	if ap == nil {
		return workloadapi.AppProtocol_UNKNOWN
	}
	switch strings.ToLower(*ap) {
	case "http":
		return workloadapi.AppProtocol_HTTP11
	case "http2", "kubernetes.io/h2c":
		return workloadapi.AppProtocol_HTTP2
	case "grpc":
		return workloadapi.AppProtocol_GRPC
	}
	return workloadapi.AppProtocol_UNKNOWN
}
