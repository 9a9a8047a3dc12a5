package kubelet

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// objectSource fetches the ConfigMaps and Secrets that env and volumes refer to.
type objectSource interface {
	ConfigMap(ctx context.Context, ns, name string) (*v1.ConfigMap, error)
	Secret(ctx context.Context, ns, name string) (*v1.Secret, error)
}

// envInput is everything a container's environment depends on.
type envInput struct {
	Pod       *v1.Pod
	Container *v1.Container
	PodIPs    []string
	HostIP    string
	// APIHost and APIPort locate the "kubernetes" Service ("" if unknown).
	APIHost string
	APIPort int32
	// NodeCPU and NodeMemory answer resourceFieldRef without limits.
	NodeCPU, NodeMemory resource.Quantity
}

// buildEnv returns the container's environment as "K=V" strings in the
// order a kubelet produces it: service variables, envFrom, then env, with
// $(VAR) references expanded against what precedes them.
func buildEnv(ctx context.Context, src objectSource, in envInput) ([]string, error) {
	type kv struct{ k, v string }
	var out []kv
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; ok {
			for i := range out {
				if out[i].k == k {
					out[i].v = v
				}
			}
		} else {
			out = append(out, kv{k, v})
		}
		vals[k] = v
	}
	if in.APIHost != "" {
		port := strconv.Itoa(int(in.APIPort))
		hp := net.JoinHostPort(in.APIHost, port)
		set("KUBERNETES_SERVICE_HOST", in.APIHost)
		set("KUBERNETES_SERVICE_PORT", port)
		set("KUBERNETES_SERVICE_PORT_HTTPS", port)
		set("KUBERNETES_PORT", "tcp://"+hp)
		set("KUBERNETES_PORT_"+port+"_TCP", "tcp://"+hp)
		set("KUBERNETES_PORT_"+port+"_TCP_PROTO", "tcp")
		set("KUBERNETES_PORT_"+port+"_TCP_PORT", port)
		set("KUBERNETES_PORT_"+port+"_TCP_ADDR", in.APIHost)
	}
	ns := in.Pod.Namespace
	for _, ef := range in.Container.EnvFrom {
		data := map[string]string{}
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := src.ConfigMap(ctx, ns, ef.ConfigMapRef.Name)
			if err != nil {
				if isOptional(ef.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom configmap %s: %w", ef.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case ef.SecretRef != nil:
			s, err := src.Secret(ctx, ns, ef.SecretRef.Name)
			if err != nil {
				if isOptional(ef.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom secret %s: %w", ef.SecretRef.Name, err)
			}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		for _, k := range sortedKeys(data) {
			set(ef.Prefix+k, data[k])
		}
	}
	for _, e := range in.Container.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandVars(e.Value, vals))
			continue
		}
		v, ok, err := envValueFrom(ctx, src, in, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	env := make([]string, 0, len(out))
	for _, p := range out {
		env = append(env, p.k+"="+p.v)
	}
	return env, nil
}

func isOptional(b *bool) bool { return b != nil && *b }

func envValueFrom(ctx context.Context, src objectSource, in envInput, vf *v1.EnvVarSource) (string, bool, error) {
	switch {
	case vf.FieldRef != nil:
		v, err := podFieldValue(in.Pod, vf.FieldRef.FieldPath, in.PodIPs, in.HostIP)
		return v, err == nil, err
	case vf.ResourceFieldRef != nil:
		v, err := resourceFieldValue(in, vf.ResourceFieldRef)
		return v, err == nil, err
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		cm, err := src.ConfigMap(ctx, in.Pod.Namespace, r.Name)
		if err != nil {
			if isOptional(r.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %s: %w", r.Name, err)
		}
		v, ok := cm.Data[r.Key]
		if !ok && !isOptional(r.Optional) {
			return "", false, fmt.Errorf("configmap %s has no key %q", r.Name, r.Key)
		}
		return v, ok, nil
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		s, err := src.Secret(ctx, in.Pod.Namespace, r.Name)
		if err != nil {
			if isOptional(r.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %s: %w", r.Name, err)
		}
		v, ok := s.Data[r.Key]
		if !ok && !isOptional(r.Optional) {
			return "", false, fmt.Errorf("secret %s has no key %q", r.Name, r.Key)
		}
		return string(v), ok, nil
	}
	return "", false, nil
}

// podFieldValue answers a downward-API fieldRef.
func podFieldValue(pod *v1.Pod, path string, podIPs []string, hostIP string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return hostIP, nil
	case "status.hostIPs":
		return hostIP, nil
	case "status.podIP":
		if len(podIPs) > 0 {
			return podIPs[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

func resourceFieldValue(in envInput, r *v1.ResourceFieldSelector) (string, error) {
	c := in.Container
	if r.ContainerName != "" {
		c = nil
		for i := range in.Pod.Spec.Containers {
			if in.Pod.Spec.Containers[i].Name == r.ContainerName {
				c = &in.Pod.Spec.Containers[i]
			}
		}
		if c == nil {
			return "", fmt.Errorf("resourceFieldRef: no container %q", r.ContainerName)
		}
	}
	var q resource.Quantity
	switch r.Resource {
	case "limits.cpu", "requests.cpu":
		q = in.NodeCPU
	case "limits.memory", "requests.memory":
		q = in.NodeMemory
	default:
		q = resource.MustParse("0")
	}
	kind, name, _ := strings.Cut(r.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	if v, ok := list[v1.ResourceName(name)]; ok {
		q = v
	}
	divisor := r.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		// Round up to whole divisor units, as the kubelet does.
		n := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
		return strconv.FormatInt(n, 10), nil
	}
	n := (q.Value() + divisor.Value() - 1) / divisor.Value()
	return strconv.FormatInt(n, 10), nil
}

func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// expandVars expands $(VAR) references against vals as Kubernetes does:
// "$$" escapes a "$", and references to undefined names stay as written.
func expandVars(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// expandArgs expands $(VAR) references in command and args against env.
func expandArgs(args []string, env []string) []string {
	vals := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expandVars(a, vals)
	}
	return out
}
