package waypoint

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGenerateGolden(t *testing.T) {
	for _, s := range []Spec{
		{Namespace: "demo"},
		{Name: "wp-all", Namespace: "shop", For: "all", Revision: "canary"},
	} {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		got, err := YAML(Gateway(s))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", s.Namespace+"-"+s.Name+".yaml")
		if *update {
			_ = os.MkdirAll("testdata", 0o755)
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
	bad := Spec{For: "pods"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "use one of service, workload, all, none") {
		t.Fatalf("Validate(--for pods) = %v", err)
	}
}

func TestApplyEnrollWait(t *testing.T) {
	ctx := context.Background()
	gc := gwfake.NewSimpleClientset()
	kc := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{UseWaypointLabel: "other"}}})
	s := Spec{Namespace: "demo"}
	_ = s.Validate()
	if err := Apply(ctx, gc, Gateway(s)); err != nil {
		t.Fatal(err)
	}
	s.For = "all"
	if err := Apply(ctx, gc, Gateway(s)); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	gw, _ := gc.GatewayV1().Gateways("demo").Get(ctx, "waypoint", metav1.GetOptions{})
	if gw.Labels[ForLabel] != "all" {
		t.Fatalf("labels after update: %v", gw.Labels)
	}
	if err := EnrollNamespace(ctx, kc, "demo", "waypoint", false); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("EnrollNamespace over another waypoint: %v", err)
	}
	if err := EnrollNamespace(ctx, kc, "demo", "waypoint", true); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := WaitProgrammed(wctx, gc, "demo", "waypoint", 5*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no Programmed condition yet") {
		t.Fatalf("WaitProgrammed before status: %v", err)
	}
	gw.Status.Conditions = []metav1.Condition{{Type: string(gwv1.GatewayConditionProgrammed), Status: metav1.ConditionTrue, Reason: "Programmed"}}
	if _, err := gc.GatewayV1().Gateways("demo").UpdateStatus(ctx, gw, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WaitProgrammed(ctx, gc, "demo", "waypoint", 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func TestProgrammed(t *testing.T) {
	cond := func(status metav1.ConditionStatus, gen int64) []metav1.Condition {
		return []metav1.Condition{{Type: string(gwv1.GatewayConditionProgrammed), Status: status, Reason: "R", Message: "m", ObservedGeneration: gen}}
	}
	for _, tc := range []struct {
		name  string
		gen   int64
		conds []metav1.Condition
		want  bool
		msg   string
	}{
		{"no status", 1, nil, false, "no Programmed condition"},
		{"pending", 1, cond(metav1.ConditionFalse, 1), false, "R: m"},
		{"programmed", 2, cond(metav1.ConditionTrue, 2), true, "R: m"},
		{"stale", 3, cond(metav1.ConditionTrue, 2), false, "generation 2, the Gateway is at 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Generation: tc.gen}, Status: gwv1.GatewayStatus{Conditions: tc.conds}}
			ok, msg := Programmed(gw)
			if ok != tc.want || !strings.Contains(msg, tc.msg) {
				t.Errorf("Programmed = %v, %q; want %v and a message with %q", ok, msg, tc.want, tc.msg)
			}
		})
	}
}
