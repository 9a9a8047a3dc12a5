package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
)

var update = flag.Bool("update", false, "rewrite golden files")

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

// fakeHTTP answers port-forwarded GETs from a table keyed "pod:port/path".
type fakeHTTP struct {
	bodies map[string][]byte
	errs   map[string]error
	got    []string
}

func (f *fakeHTTP) Get(_ context.Context, ns, pod string, port int, path string) ([]byte, error) {
	key := fmt.Sprintf("%s:%d%s", pod, port, path)
	f.got = append(f.got, ns+"/"+key)
	if err := f.errs[key]; err != nil {
		return nil, err
	}
	if b, ok := f.bodies[key]; ok {
		return b, nil
	}
	return nil, errors.New("connection refused")
}

var testNow = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func readyPod(name, ns, node, app, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: app, Image: image}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func baseObjects() []runtime.Object {
	return []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
		readyPod("istiod-lite-5c9d", "weft-system", "node-a", "istiod-lite", "weft/istiod-lite:v0.1.0"),
		readyPod("ztunnel-aaaa", "weft-system", "node-a", "ztunnel", "weft/ztunnel:v0.1.0"),
		readyPod("ztunnel-bbbb", "weft-system", "node-b", "ztunnel", "weft/ztunnel:v0.1.0"),
		readyPod("weft-cni-agent-aaaa", "weft-system", "node-a", "weft-cni-agent", "weft/weft-cni-agent:v0.1.0"),
		readyPod("weft-cni-agent-bbbb", "weft-system", "node-b", "weft-cni-agent", "weft/weft-cni-agent:v0.1.0"),
	}
}

type harness struct {
	http *fakeHTTP
	kube *fake.Clientset
	gw   *gwfake.Clientset
}

func newHarness(t *testing.T, objs []runtime.Object, gwObjs ...runtime.Object) *harness {
	t.Helper()
	dump, err := os.ReadFile("../zdump/testdata/config_dump.json")
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		http: &fakeHTTP{bodies: map[string][]byte{
			"ztunnel-aaaa:15000/config_dump": dump,
			"ztunnel-bbbb:15000/config_dump": dump,
			"ztunnel-aaaa:15000/logging":     []byte(`{"default":"info","components":{"proxy":"debug"}}`),
			"weft-cni-agent-aaaa:15016/debug/pods": []byte(`{"node":"node-a","ruleCheckInterval":"30s","pods":[` +
				`{"namespace":"demo","name":"client-7d9f","uid":"u1","ztunnelAcked":true,"rules":{"inPlace":true}},` +
				`{"namespace":"demo","name":"echo-1","uid":"u2","ztunnelAcked":true,"rules":{"inPlace":false,"drift":["nat/WEFT_PRERT: chain missing","nat/PREROUTING: jump to WEFT_PRERT missing"]}}]}`),
			"ztunnel-aaaa:15000/logging?level=proxy%3Adebug": []byte(`{"default":"info","components":{"proxy":"debug"}}`),
		}, errs: map[string]error{}},
		kube: fake.NewClientset(objs...),
		gw:   gwfake.NewSimpleClientset(gwObjs...),
	}
}

func (h *harness) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Out: &out, Err: &errOut,
		Clients: func(o kube.Options) (*kube.Clients, error) {
			ns := o.Namespace
			if ns == "" {
				ns = "default"
			}
			return &kube.Clients{Kube: h.kube, Gateway: h.gw, Namespace: ns}, nil
		},
		PodHTTP: func(*kube.Clients) kube.PodHTTP { return h.http },
		Now:     func() time.Time { return testNow },
	}
	code := Execute(context.Background(), env, args)
	return out.String(), errOut.String(), code
}

func TestZtunnelConfigGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"zc-workloads-node-a", []string{"ztunnel-config", "workloads", "--node", "node-a"}},
		{"zc-workloads-pod-ns", []string{"ztunnel-config", "workload", "ztunnel-bbbb", "--workload-namespace", "legacy"}},
		{"zc-services-wide", []string{"zc", "services", "--node", "node-a", "-o", "wide"}},
		{"zc-policies-yaml", []string{"zc", "policies", "--node", "node-a", "--workload-namespace", "demo", "-o", "yaml"}},
		{"zc-certificates", []string{"zc", "certificates", "--node", "node-b"}},
		{"zc-connections", []string{"zc", "connections", "--node", "node-a"}},
		{"zc-all", []string{"zc", "all", "--node", "node-a"}},
		{"zc-all-file", []string{"zc", "all", "-f", "../zdump/testdata/config_dump.json", "--workload-namespace", "legacy"}},
		{"zc-log", []string{"zc", "log", "--node", "node-a"}},
		{"zc-log-set-json", []string{"zc", "log", "--node", "node-a", "--level", "proxy:debug", "-o", "json"}},
		{"version", []string{"version"}},
		{"version-json", []string{"version", "-o", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, baseObjects())
			out, errOut, code := h.run(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, tc.name, []byte(strings.ReplaceAll(out, versionString(), "CLIENT")))
		})
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown node", []string{"zc", "workloads", "--node", "node-x"}, `node "node-x" not found; nodes are: node-a, node-b`},
		{"ztunnel silent", []string{"zc", "workloads", "ztunnel-bbbb.weft-system"}, "ztunnel ztunnel-bbbb on node node-b did not answer on its admin port 15000: refused; is it running and ready? (`kubectl -n weft-system get pod ztunnel-bbbb`"},
		{"bad output", []string{"zc", "workloads", "-o", "xml"}, `unknown output format "xml": use one of table, wide, json, yaml`},
		{"missing namespace", []string{"namespace", "enroll", "nope"}, "namespace \"nope\" not found; list namespaces with `kubectl get namespaces`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, baseObjects())
			h.http.errs["ztunnel-bbbb:15000/config_dump"] = errors.New("refused")
			_, errOut, code := h.run(t, tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want it to contain %q", code, errOut, tc.want)
			}
		})
	}
}

func TestNoKubeconfig(t *testing.T) {
	var out, errOut bytes.Buffer
	env := Env{Out: &out, Err: &errOut, Clients: func(kube.Options) (*kube.Clients, error) { return nil, kube.ErrNoKubeconfig }}
	if code := Execute(context.Background(), env, []string{"zc", "workloads"}); code != 1 || !strings.Contains(errOut.String(), "pass --kubeconfig FILE") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && !strings.HasPrefix(c.CommandPath(), "weftctl completion") && c.Example == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(NewRoot(Env{}))
}

func TestNamespaceEnrollWait(t *testing.T) {
	objs := append(baseObjects(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "demo", Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}},
			Spec: corev1.PodSpec{NodeName: "node-a"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo-2", Namespace: "demo"},
			Spec: corev1.PodSpec{NodeName: "node-b"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	)
	h := newHarness(t, objs)
	out, _, code := h.run(t, "namespace", "enroll", "demo", "--wait", "--timeout", "50ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a pod is stuck)", code)
	}
	golden(t, "namespace-enroll-stuck", []byte(out))
	ns, _ := h.kube.CoreV1().Namespaces().Get(context.Background(), "demo", metav1.GetOptions{})
	if ns.Labels["istio.io/dataplane-mode"] != "ambient" {
		t.Fatalf("namespace labels %v", ns.Labels)
	}
}
