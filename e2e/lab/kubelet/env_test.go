package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type fakeObjects struct {
	cms     map[string]*v1.ConfigMap
	secrets map[string]*v1.Secret
}

func (f *fakeObjects) ConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	if cm, ok := f.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, fmt.Errorf("configmap %s/%s not found", ns, name)
}

func (f *fakeObjects) Secret(_ context.Context, ns, name string) (*v1.Secret, error) {
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("secret %s/%s not found", ns, name)
}

func TestExpandVars(t *testing.T) {
	vals := map[string]string{"A": "1", "POD_IP": "10.0.0.5"}
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"--ip=$(POD_IP):80", "--ip=10.0.0.5:80"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"cost $5", "cost $5"},
		{"$(A", "$(A"},
		{"$", "$"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := expandVars(tc.in, vals); got != tc.want {
				t.Errorf("expandVars(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestBuildEnv(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "demo", UID: "u1", Labels: map[string]string{"app": "echo"}},
		Spec:       v1.PodSpec{NodeName: "n1", ServiceAccountName: "echo"},
	}
	c := &v1.Container{
		Name:    "echo",
		EnvFrom: []v1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		Env: []v1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "HOST_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
			{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "SA", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
			{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "KEY", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "k"}}},
			{Name: "ADDR", Value: "$(POD_IP):8080"},
		},
	}
	src := &fakeObjects{
		cms:     map[string]*v1.ConfigMap{"demo/cfg": {Data: map[string]string{"B": "2", "A": "1"}}},
		secrets: map[string]*v1.Secret{"demo/s": {Data: map[string][]byte{"k": []byte("secret")}}},
	}
	got, err := buildEnv(context.Background(), src, envInput{
		Pod: pod, Container: c, PodIPs: []string{"10.244.1.7"}, HostIP: "192.168.50.2",
		APIHost: "10.96.0.1", APIPort: 443,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO=tcp", "KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
		"CM_A=1", "CM_B=2",
		"POD_NAME=echo-1", "POD_NAMESPACE=demo", "POD_IP=10.244.1.7", "HOST_IP=192.168.50.2",
		"NODE=n1", "SA=echo", "APP=echo", "KEY=secret", "ADDR=10.244.1.7:8080",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	args := expandArgs([]string{"--listen=$(ADDR)", "$(NOPE)"}, got)
	if diff := cmp.Diff([]string{"--listen=10.244.1.7:8080", "$(NOPE)"}, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	c.Env = append(c.Env, v1.EnvVar{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Key: "x"}}})
	if _, err := buildEnv(context.Background(), src, envInput{Pod: pod, Container: c}); err == nil {
		t.Error("missing non-optional configmap: want error")
	}
}

func TestResolveImage(t *testing.T) {
	images := map[string]string{"weft/ztunnel": "/bin/ztunnel", "registry.k8s.io/coredns/coredns": "/bin/coredns", "busybox": "/bin/busybox"}
	for _, tc := range []struct{ image, want string }{
		{"weft/ztunnel:dev", "/bin/ztunnel"},
		{"weft/ztunnel@sha256:abcd", "/bin/ztunnel"},
		{"registry.k8s.io/coredns/coredns:v1.14.7", "/bin/coredns"},
		{"docker.io/library/busybox:1.36", "/bin/busybox"},
		{"weft/unknown:1", ""},
	} {
		t.Run(tc.image, func(t *testing.T) {
			got, err := resolveImage(images, tc.image)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Errorf("resolveImage(%q) = %q, %v; want %q", tc.image, got, err, tc.want)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "demo"}}
	got := resolvConf(pod, "10.96.0.10", "cluster.local")
	want := "nameserver 10.96.0.10\nsearch demo.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if got != want {
		t.Errorf("ClusterFirst:\n%s\nwant:\n%s", got, want)
	}
	pod.Spec.HostNetwork = true
	if got := resolvConf(pod, "10.96.0.10", "cluster.local"); got != "" {
		t.Errorf("hostNetwork ClusterFirst should keep the node's resolv.conf, got %q", got)
	}
	pod.Spec.DNSPolicy = v1.DNSClusterFirstWithHostNet
	if got := resolvConf(pod, "10.96.0.10", "cluster.local"); got != want {
		t.Errorf("ClusterFirstWithHostNet:\n%s", got)
	}
}

func TestTailLines(t *testing.T) {
	b := []byte("a\nb\nc\n")
	for _, tc := range []struct {
		n    int
		want string
	}{{-1, "a\nb\nc\n"}, {0, ""}, {1, "c\n"}, {2, "b\nc\n"}, {5, "a\nb\nc\n"}} {
		if got := string(tailLines(b, tc.n)); got != tc.want {
			t.Errorf("tailLines(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestShouldRestartAndBackoff(t *testing.T) {
	for _, tc := range []struct {
		policy  v1.RestartPolicy
		sidecar bool
		code    int32
		want    bool
	}{
		{v1.RestartPolicyAlways, false, 0, true},
		{v1.RestartPolicyOnFailure, false, 0, false},
		{v1.RestartPolicyOnFailure, false, 1, true},
		{v1.RestartPolicyNever, false, 1, false},
		{v1.RestartPolicyNever, true, 0, true},
	} {
		if got := shouldRestart(tc.policy, tc.sidecar, tc.code); got != tc.want {
			t.Errorf("shouldRestart(%s, %v, %d) = %v", tc.policy, tc.sidecar, tc.code, got)
		}
	}
	if backoffFor(1) != backoffBase || backoffFor(2) != 2*backoffBase || backoffFor(100) != backoffMax {
		t.Errorf("backoff: %v %v %v", backoffFor(1), backoffFor(2), backoffFor(100))
	}
}

func TestHostPathFor(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/lab/node-1/root"},
		{"/var/run/ztunnel", "/lab/node-1/root/var/run/ztunnel"},
		{"/proc", "/proc"},
		{"/sys/fs/bpf", "/sys/fs/bpf"},
		{"/dev/net/tun", "/dev/net/tun"},
		{"/var/run/netns", "/var/run/netns"},
		{"/run/netns/x", "/var/run/netns/x"},
		{"/var/run/netnsx", "/lab/node-1/root/var/run/netnsx"},
		{"/devices", "/lab/node-1/root/devices"},
	} {
		if got := hostPathFor("/lab/node-1/root", "/var/run/netns", tc.in); got != tc.want {
			t.Errorf("hostPathFor(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	if err := writeFiles(dir, map[string]fileContent{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}}); err != nil {
		t.Fatal(err)
	}
	if err := writeFiles(dir, map[string]fileContent{"a": {[]byte("3"), 0o644}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "3" {
		t.Errorf("a = %q, want 3", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub/b")); err == nil {
		t.Error("stale key sub/b not removed")
	}
}

func TestServiceLinkEnv(t *testing.T) {
	got := serviceLinkEnv([]v1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "echo-v1"}, Spec: v1.ServiceSpec{ClusterIP: "10.96.0.20",
			Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless"}, Spec: v1.ServiceSpec{ClusterIP: "None", Ports: []v1.ServicePort{{Port: 80}}}},
	})
	want := []string{
		"ECHO_V1_SERVICE_HOST=10.96.0.20", "ECHO_V1_SERVICE_PORT=80", "ECHO_V1_SERVICE_PORT_HTTP=80",
		"ECHO_V1_PORT=tcp://10.96.0.20:80", "ECHO_V1_PORT_80_TCP=tcp://10.96.0.20:80",
		"ECHO_V1_PORT_80_TCP_PROTO=tcp", "ECHO_V1_PORT_80_TCP_PORT=80", "ECHO_V1_PORT_80_TCP_ADDR=10.96.0.20",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service links (-want +got):\n%s", diff)
	}
}

func TestDedupeEnv(t *testing.T) {
	got := dedupeEnv([]string{"A=1", "B=2", "A=3", "C=", "B=4"})
	if diff := cmp.Diff([]string{"A=3", "B=4", "C="}, got); diff != "" {
		t.Errorf("dedupeEnv (-want +got):\n%s", diff)
	}
}
