package l7

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

func TestKubeReporterWritesEventsAndRouteStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	kube := kubefake.NewSimpleClientset()
	gw := gatewayfake.NewSimpleClientset()
	r := httpRoute(t, `{parentRefs: [{kind: Service, name: svc}, {name: ingress}], rules: [{backendRefs: [{name: v1, namespace: other, port: 80}]}]}`, nil)
	r.UID, r.Generation = "u1", 2
	other := gatewayv1.RouteParentStatus{ParentRef: gatewayv1.ParentReference{Name: "ingress"}, ControllerName: "example.com/ingress"}
	r.Status.Parents = []gatewayv1.RouteParentStatus{other}
	if _, err := gw.GatewayV1().HTTPRoutes("demo").Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	c := New(Config{}, nil, nil)
	rep := NewKubeReporter(kube, gw, nil)
	c.rep = rep
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	c.UpsertHTTPRoute(r)

	var got *gatewayv1.HTTPRoute
	waitFor(t, "route status", func() bool {
		var err error
		got, err = gw.GatewayV1().HTTPRoutes("demo").Get(ctx, "r", metav1.GetOptions{})
		return err == nil && len(got.Status.Parents) == 2
	})
	if got.Status.Parents[0].ControllerName != "example.com/ingress" {
		t.Errorf("another controller's parent was not kept: %+v", got.Status.Parents)
	}
	mine := got.Status.Parents[1]
	if mine.ControllerName != RouteControllerName || mine.ParentRef.Name != "svc" {
		t.Fatalf("parent = %+v", mine)
	}
	want := map[string]string{"Accepted": "False/UnsupportedValue", "ResolvedRefs": "False/RefNotPermitted"}
	for _, cond := range mine.Conditions {
		if s := string(cond.Status) + "/" + cond.Reason; want[cond.Type] != s || cond.ObservedGeneration != 2 {
			t.Errorf("condition %s = %s (generation %d), want %s", cond.Type, s, cond.ObservedGeneration, want[cond.Type])
		}
	}
	// The route moves to an ingress Gateway only: our entry goes.
	moved := got.DeepCopy()
	moved.Generation = 3
	moved.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "ingress"}}
	if _, err := gw.GatewayV1().HTTPRoutes("demo").Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.UpsertHTTPRoute(moved)
	waitFor(t, "status entry withdrawn", func() bool {
		got, err := gw.GatewayV1().HTTPRoutes("demo").Get(ctx, "r", metav1.GetOptions{})
		return err == nil && len(got.Status.Parents) == 1 && got.Status.Parents[0].ControllerName == "example.com/ingress"
	})
	waitFor(t, "warning event", func() bool {
		evs, err := kube.CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
		if err != nil || len(evs.Items) == 0 {
			return false
		}
		e := evs.Items[0]
		return e.Type == corev1.EventTypeWarning && e.Reason == ReasonInvalid && e.InvolvedObject.Name == "r" &&
			e.InvolvedObject.Kind == "HTTPRoute"
	})
}

func TestRouteParentStatusesAccepted(t *testing.T) {
	now := metav1.NewTime(time.Unix(1, 0))
	sts := RouteParentStatuses(Report{Ref: ObjectRef{Kind: "HTTPRoute", Generation: 1}, Parents: []ParentStatus{{Ref: gatewayv1.ParentReference{Name: "a"}}, {Ref: gatewayv1.ParentReference{Name: "b"}, Problem: "no"}}}, now)
	got := []string{}
	for _, s := range sts {
		for _, c := range s.Conditions {
			got = append(got, string(s.ParentRef.Name)+" "+c.Type+"="+string(c.Status))
		}
	}
	want := []string{"a Accepted=True", "a ResolvedRefs=True", "b Accepted=False", "b ResolvedRefs=True"}
	if d := diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
