package nodeagent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cni/iptables"
)

func getPods(t *testing.T, a *Agent) PodsReport {
	t.Helper()
	srv := httptest.NewServer(a.adminHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/pods")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep PodsReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRuleDriftReportedAndRepaired deletes an enrolled pod's redirect rule
// and ip rule "by hand": the admin endpoint reports the drift at once, the
// periodic check re-applies the rules (with an event), and the endpoint
// then reports them in place with the repair counted.
func TestRuleDriftReportedAndRepaired(t *testing.T) {
	h := newHarness(t, namespace("demo", true), runningPod("demo", "web", "uid-web", "10.244.1.5"))
	h.net.running["10.244.1.5"] = true
	h.cfg.RuleCheckInterval = time.Hour // checked by hand below
	h.agent.cfg.RuleCheckInterval = time.Hour
	h.start()
	h.eventually("annotated", func() bool {
		return h.pod("demo", "web").Annotations[AnnotationRedirection] == RedirectionEnabled
	})
	// The annotation is written before the enrollment lets go of the
	// pod's lock; until then the report says the pod is busy.
	var rep PodsReport
	h.eventually("the enrollment done", func() bool {
		rep = getPods(t, h.agent)
		return len(rep.Pods) != 1 || rep.Pods[0].Rules.Error != errPodBusy
	})
	if len(rep.Pods) != 1 || !rep.Pods[0].Rules.InPlace || !rep.Pods[0].ZtunnelAcked || rep.Node != "node-1" || rep.RuleCheckInterval != "1h0m0s" {
		t.Fatalf("report before tampering = %+v", rep)
	}

	want := h.net.dump("10.244.1.5")
	inbound := iptables.InPodRuleSet(iptables.Config{}).Rules[3]
	h.net.mu.Lock()
	_ = h.net.tables["10.244.1.5"].DeleteIfExists(inbound.Table, inbound.Chain, inbound.Spec...)
	h.net.routes["10.244.1.5"].DeleteRule()
	h.net.mu.Unlock()

	rep = getPods(t, h.agent)
	got := rep.Pods[0].Rules
	wantDrift := []string{
		"ip rule fwmark 0x111/0xfff lookup 100 missing",
		"nat/WEFT_PRERT: rule missing: " + strings.Join(inbound.Spec, " "),
	}
	if got.InPlace || !cmp.Equal(got.Drift, wantDrift) {
		t.Fatalf("rules after tampering = %+v, want drift %q", got, wantDrift)
	}
	if h.net.dump("10.244.1.5") == want {
		t.Fatal("reporting repaired the rules; only the periodic check should")
	}

	// One round of the periodic check.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.agent.ruleCheckLoop(ctx, 20*time.Millisecond) }()
	h.eventually("rules repaired", func() bool { return h.net.dump("10.244.1.5") == want })
	cancel()
	<-done
	rep = getPods(t, h.agent)
	p := rep.Pods[0]
	if !p.Rules.InPlace || p.Repairs != 1 || p.LastRepair == nil || !cmp.Equal(p.LastDrift, wantDrift) {
		t.Fatalf("report after repair = %+v", p)
	}
	select {
	case ev := <-h.events.Events:
		if !strings.Contains(ev, "RedirectRulesRepaired") || !strings.Contains(ev, "WEFT_PRERT") {
			t.Errorf("event = %q", ev)
		}
	case <-time.After(time.Second):
		t.Error("no RedirectRulesRepaired event")
	}
	if got := testutilCounter(t, h, "weft_cni_rule_drift_repairs_total"); got != 1 {
		t.Errorf("weft_cni_rule_drift_repairs_total = %v, want 1", got)
	}

	// Unenrolled pods leave the report.
	if _, err := h.kube.CoreV1().Namespaces().Update(context.Background(), namespace("demo", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("pod dropped from the report", func() bool { return len(getPods(t, h.agent).Pods) == 0 })
}

// testutilCounter reads a counter from the agent's registry.
func testutilCounter(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.agent.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

// TestDualStackProbeSNAT: with IPv6 capture on, a dual-stack pod gets a
// probe SNAT rule per family, and unenrolling removes both; without it
// (the default) only the IPv4 address gets one.
func TestDualStackProbeSNAT(t *testing.T) {
	pod := runningPod("demo", "web", "uid-web", "10.244.1.5")
	pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: "fd00:10:244:1::5"})
	h := newHarness(t, namespace("demo", true), pod)
	h.net.running["10.244.1.5"] = true
	probes6 := iptables.NewRecorder()
	h.agent.probes6 = iptables.ProbeSNAT{Tables: probes6, IPv6: true}
	h.start()
	h.eventually("annotated", func() bool {
		return h.pod("demo", "web").Annotations[AnnotationRedirection] == RedirectionEnabled
	})
	if !strings.Contains(h.probes.Dump(), "-d 10.244.1.5/32") || strings.Contains(h.probes.Dump(), "fd00") {
		t.Errorf("IPv4 probe snat:\n%s", h.probes.Dump())
	}
	if !strings.Contains(probes6.Dump(), "-d fd00:10:244:1::5/128") || !strings.Contains(probes6.Dump(), iptables.ProbeSNATAddr6) {
		t.Errorf("IPv6 probe snat:\n%s", probes6.Dump())
	}
	if _, err := h.kube.CoreV1().Namespaces().Update(context.Background(), namespace("demo", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("probe snat removed in both families", func() bool {
		return !strings.Contains(h.probes.Dump(), "weft-probe:") && !strings.Contains(probes6.Dump(), "weft-probe:")
	})
}
