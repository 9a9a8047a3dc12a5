package kubelet

import (
	"context"
	"net"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceLinkEnv returns the Docker-links style variables a kubelet sets
// for every Service with a ClusterIP in the pod's namespace
// (enableServiceLinks, the default), e.g. ECHO_SERVICE_HOST.
func serviceLinkEnv(services []v1.Service) []string {
	var env []string
	for _, svc := range services {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == v1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			continue
		}
		name := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))
		first := svc.Spec.Ports[0]
		env = append(env, name+"_SERVICE_HOST="+ip, name+"_SERVICE_PORT="+strconv.Itoa(int(first.Port)))
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				env = append(env, name+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))+"="+strconv.Itoa(int(p.Port)))
			}
		}
		proto := strings.ToLower(string(first.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		env = append(env, name+"_PORT="+proto+"://"+net.JoinHostPort(ip, strconv.Itoa(int(first.Port))))
		for _, p := range svc.Spec.Ports {
			proto := string(p.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			port := strconv.Itoa(int(p.Port))
			prefix := name + "_PORT_" + port + "_" + strings.ToUpper(proto)
			env = append(env,
				prefix+"="+strings.ToLower(proto)+"://"+net.JoinHostPort(ip, port),
				prefix+"_PROTO="+strings.ToLower(proto),
				prefix+"_PORT="+port,
				prefix+"_ADDR="+ip)
		}
	}
	return env
}

// namespaceServices lists the Services of ns for service links; errors
// leave the links out rather than blocking the container.
func (k *kubelet) namespaceServices(ctx context.Context, ns string) []v1.Service {
	list, err := k.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		k.log.Debug("list services for service links", "namespace", ns, "err", err)
		return nil
	}
	return list.Items
}

// dedupeEnv keeps one entry per name: the last value, at the position of
// the first (later sources override earlier ones, as in a kubelet).
func dedupeEnv(env []string) []string {
	idx := map[string]int{}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}
