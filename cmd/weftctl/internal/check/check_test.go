package check

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
)

var update = flag.Bool("update", false, "rewrite golden files")

var now = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

type fakeHTTP struct {
	bodies map[string][]byte
}

func (f *fakeHTTP) Get(_ context.Context, ns, pod string, port int, path string) ([]byte, error) {
	if b, ok := f.bodies[fmt.Sprintf("%s:%d%s", pod, port, path)]; ok {
		return b, nil
	}
	return nil, errors.New("connection refused")
}

func rootPEMFor(t *testing.T, notAfter time.Time) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func ready(p *corev1.Pod, ok bool) *corev1.Pod {
	st := corev1.ConditionTrue
	if !ok {
		st = corev1.ConditionFalse
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func sysPod(name, node, app string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "weft-system", Labels: map[string]string{"app": app}}, Spec: corev1.PodSpec{NodeName: node}}
	if app == "weft-cni-agent" {
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "install-cni", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	}
	return ready(p, true)
}

func appPod(name, sa, node string, annotated bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: sa}}
	if annotated {
		p.Annotations = map[string]string{"ambient.istio.io/redirection": "enabled"}
	}
	return ready(p, true)
}

// cluster is a healthy install that scenarios break.
type cluster struct {
	objs   map[string]runtime.Object
	bodies map[string][]byte
	minor  string
	apiErr error
}

func healthy(t *testing.T) *cluster {
	dump, err := os.ReadFile("../zdump/testdata/config_dump.json")
	if err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	c := &cluster{minor: "37", objs: map[string]runtime.Object{}, bodies: map[string][]byte{
		"ztunnel-aaaa:15000/config_dump": dump, "ztunnel-bbbb:15000/config_dump": dump,
		agentKey("aaaa"): agentReport("node-a", heldPod("client-7d9f")),
		agentKey("bbbb"): agentReport("node-b"),
	}}
	for _, o := range []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "weft-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod-lite", Namespace: "weft-system"}, Spec: appsv1.DeploymentSpec{Replicas: &one},
			Status: appsv1.DeploymentStatus{ReadyReplicas: 1}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio-ca-root-cert", Namespace: "weft-system"},
			Data: map[string]string{"root-cert.pem": rootPEMFor(t, now.Add(365*24*time.Hour))}},
		sysPod("ztunnel-aaaa", "node-a", "ztunnel"), sysPod("ztunnel-bbbb", "node-b", "ztunnel"),
		sysPod("weft-cni-agent-aaaa", "node-a", "weft-cni-agent"), sysPod("weft-cni-agent-bbbb", "node-b", "weft-cni-agent"),
		appPod("client-7d9f", "client", "node-a", true),
	} {
		m := o.(metav1.ObjectMetaAccessor).GetObjectMeta()
		c.objs[fmt.Sprintf("%T/%s/%s", o, m.GetNamespace(), m.GetName())] = o
	}
	return c
}

func agentKey(suffix string) string {
	return fmt.Sprintf("weft-cni-agent-%s:%d%s", suffix, kube.AgentAdminPort, kube.AgentPodsPath)
}

func heldPod(name string, drift ...string) kube.AgentPod {
	return kube.AgentPod{Namespace: "demo", Name: name, UID: "uid-" + name, ZtunnelAcked: true,
		Rules: kube.RuleCheck{InPlace: len(drift) == 0, Drift: drift}}
}

func agentReport(node string, pods ...kube.AgentPod) []byte {
	return jsonMarshal(kube.AgentReport{Node: node, RuleCheckInterval: "30s", Pods: append([]kube.AgentPod{}, pods...)})
}

func (c *cluster) set(o runtime.Object) {
	m := o.(metav1.ObjectMetaAccessor).GetObjectMeta()
	c.objs[fmt.Sprintf("%T/%s/%s", o, m.GetNamespace(), m.GetName())] = o
}

func (c *cluster) del(o runtime.Object) {
	m := o.(metav1.ObjectMetaAccessor).GetObjectMeta()
	delete(c.objs, fmt.Sprintf("%T/%s/%s", o, m.GetNamespace(), m.GetName()))
}

func (c *cluster) deps() Deps {
	var objs []runtime.Object
	for _, o := range c.objs {
		objs = append(objs, o)
	}
	kc := fake.NewClientset(objs...)
	kc.Resources = []*metav1.APIResourceList{
		{GroupVersion: "security.istio.io/v1", APIResources: []metav1.APIResource{{Name: "authorizationpolicies"}, {Name: "peerauthentications"}}},
		{GroupVersion: "gateway.networking.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "gateways"}, {Name: "gatewayclasses"}}},
	}
	kc.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{Major: "1", Minor: c.minor, GitVersion: "v1." + c.minor + ".2"}
	if c.apiErr != nil {
		kc.PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, c.apiErr })
	}
	kc.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		sar.Status.Allowed = sar.Spec.ResourceAttributes.Resource != "customresourcedefinitions"
		sar.Status.Reason = "no RBAC policy matched"
		return true, sar, nil
	})
	gw := gwfake.NewClientset(&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "istio-waypoint"}})
	return Deps{Kube: kc, Gateway: gw, HTTP: &fakeHTTP{bodies: c.bodies}, SystemNS: "weft-system", Now: now}
}

func TestScenarios(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pre     bool
		breakIt func(t *testing.T, c *cluster)
		success bool
	}{
		{name: "healthy", success: true},
		{name: "cni-agent-stopped", breakIt: func(t *testing.T, c *cluster) {
			p := sysPod("weft-cni-agent-bbbb", "node-b", "weft-cni-agent")
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
			c.set(ready(p, false))
		}},
		{name: "istiod-scaled-to-zero", breakIt: func(t *testing.T, c *cluster) {
			zero := int32(0)
			c.set(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod-lite", Namespace: "weft-system"}, Spec: appsv1.DeploymentSpec{Replicas: &zero}})
			var d map[string]any
			_ = jsonUnmarshal(c.bodies["ztunnel-bbbb:15000/config_dump"], &d)
			d["xds"] = map[string]any{"Connected": false}
			c.bodies["ztunnel-bbbb:15000/config_dump"] = jsonMarshal(d)
		}},
		{name: "ztunnels-disagree", success: true, breakIt: func(t *testing.T, c *cluster) {
			var d map[string]any
			_ = jsonUnmarshal(c.bodies["ztunnel-bbbb:15000/config_dump"], &d)
			types := d["xds"].(map[string]any)["Types"].(map[string]any)
			types["type.googleapis.com/istio.workload.Address"].(map[string]any)["Resources"] = 4
			c.bodies["ztunnel-bbbb:15000/config_dump"] = jsonMarshal(d)
		}},
		{name: "ztunnel-nack", breakIt: func(t *testing.T, c *cluster) {
			var d map[string]any
			_ = jsonUnmarshal(c.bodies["ztunnel-aaaa:15000/config_dump"], &d)
			types := d["xds"].(map[string]any)["Types"].(map[string]any)
			types["type.googleapis.com/istio.security.Authorization"].(map[string]any)["LastNACK"] = "policy demo/x: rules[0].clauses[0].matches[0].source_ips[0]: bad prefix"
			c.bodies["ztunnel-aaaa:15000/config_dump"] = jsonMarshal(d)
		}},
		{name: "label-typo", breakIt: func(t *testing.T, c *cluster) {
			c.set(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio.io/dataplane-mode": "ambinet"}}})
			p := appPod("solo-0", "default", "node-a", false)
			p.Labels = map[string]string{"istio.io/dataplane-mode": "Ambient"}
			c.set(p)
		}},
		{name: "pod-not-redirected-and-unheld", breakIt: func(t *testing.T, c *cluster) {
			c.set(appPod("fresh-0", "default", "node-b", false))
			c.set(appPod("ghost-0", "default", "node-b", true))
			c.bodies[agentKey("bbbb")] = agentReport("node-b", heldPod("ghost-0"))
		}},
		{name: "redirect-rules-removed", breakIt: func(t *testing.T, c *cluster) {
			c.set(appPod("echo-1", "echo", "node-a", true))
			c.set(appPod("echo-2", "echo", "node-b", true))
			c.bodies[agentKey("aaaa")] = agentReport("node-a", heldPod("client-7d9f"), heldPod("echo-1",
				"ip rule fwmark 0x111/0xfff lookup 100 missing",
				"nat/WEFT_PRERT: rule missing: -s 169.254.7.127/32 -p tcp -j ACCEPT",
				"nat/WEFT_PRERT: rule missing: ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006",
				"mangle/OUTPUT: jump missing: -j WEFT_OUTPUT"))
			c.bodies[agentKey("bbbb")] = agentReport("node-b") // echo-2 not held
		}},
		{name: "cni-agent-silent", success: true, breakIt: func(t *testing.T, c *cluster) {
			delete(c.bodies, agentKey("aaaa"))
		}},
		{name: "cert-unavailable-and-ztunnel-silent", breakIt: func(t *testing.T, c *cluster) {
			c.set(appPod("echo-1", "echo", "node-a", true))
			c.bodies[agentKey("aaaa")] = agentReport("node-a", heldPod("client-7d9f"), heldPod("echo-1"))
			delete(c.bodies, "ztunnel-bbbb:15000/config_dump")
		}},
		{name: "old-kubernetes-no-crds", breakIt: func(t *testing.T, c *cluster) { c.minor = "28" }},
		{name: "api-unreachable", breakIt: func(t *testing.T, c *cluster) {
			c.apiErr = errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
		}},
		{name: "no-control-plane", breakIt: func(t *testing.T, c *cluster) {
			c.del(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "weft-system"}})
		}},
		{name: "pre", pre: true, breakIt: func(t *testing.T, c *cluster) {
			c.set(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Labels: map[string]string{"istio-injection": "enabled"}}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := healthy(t)
			if tc.breakIt != nil {
				tc.breakIt(t, c)
			}
			d := c.deps()
			if tc.name == "old-kubernetes-no-crds" {
				d.Kube.(*fake.Clientset).Resources = nil
			}
			rep := Run(context.Background(), d, tc.pre)
			if rep.Success != tc.success {
				t.Errorf("Success = %v, want %v", rep.Success, tc.success)
			}
			var buf bytes.Buffer
			if err := WriteText(&buf, rep); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
		})
	}
}

func TestJSONShape(t *testing.T) {
	c := healthy(t)
	c.set(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio.io/dataplane-mode": "ambinet"}}})
	rep := Run(context.Background(), c.deps(), false)
	golden(t, "label-typo.json", append(jsonMarshal(rep), '\n'))
	rep = ClientError(errors.New("no kubeconfig found"))
	var buf bytes.Buffer
	_ = WriteText(&buf, rep)
	golden(t, "client-error", buf.Bytes())
}
