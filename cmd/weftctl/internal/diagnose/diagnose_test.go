package diagnose

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
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

func readyPod(name, ns string, ann map[string]string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann}, Spec: corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
}

func TestDiagnose(t *testing.T) {
	b, _ := os.ReadFile("../zdump/testdata/config_dump.json")
	d, err := zdump.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile("testdata/ztunnel.log")
	metrics, _ := os.ReadFile("testdata/metrics.txt")
	on := map[string]string{"ambient.istio.io/redirection": "enabled"}
	zt, ag := readyPod("ztunnel-aaaa", "weft-system", nil), readyPod("weft-cni-agent-aaaa", "weft-system", nil)
	ag.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", RestartCount: 3}}
	in := Inputs{
		Node:    &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
		Ztunnel: &zt, Agent: &ag,
		Pods: []corev1.Pod{
			readyPod("client-7d9f", "demo", on), readyPod("echo-1", "demo", on),
			readyPod("new-0", "demo", nil), readyPod("web-0", "shop", nil),
		},
		EnrolledNS: map[string]bool{"demo": true},
		Dump:       d, Logs: logs, Metrics: metrics,
		AgentPods: &kube.AgentReport{Node: "node-a", RuleCheckInterval: "30s", Pods: []kube.AgentPod{
			{Namespace: "demo", Name: "client-7d9f", ZtunnelAcked: true, Rules: kube.RuleCheck{InPlace: true}},
			{Namespace: "demo", Name: "echo-1", ZtunnelAcked: true, Rules: kube.RuleCheck{Drift: []string{"ip rule fwmark 0x111/0xfff lookup 100 missing", "nat/WEFT_OUTPUT: rule missing: ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"}}},
		}},
		Now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
	}
	r := Diagnose(in)
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "node-a", buf.Bytes())
	j, _ := json.MarshalIndent(r, "", "  ")
	golden(t, "node-a.json", append(j, '\n'))

	silent := Diagnose(Inputs{Node: in.Node, Ztunnel: &zt, DumpErr: errors.New("connection refused"), LogsErr: errors.New("forbidden"), Now: in.Now})
	buf.Reset()
	_ = WriteText(&buf, silent)
	golden(t, "silent-ztunnel-no-agent", buf.Bytes())
}
