package waypoint

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
)

// harness runs a controller against fake clientsets.
type harness struct {
	kube *kubefake.Clientset
	gw   *gwfake.Clientset
}

func start(t *testing.T, gws ...*gatewayv1.Gateway) *harness {
	t.Helper()
	h := &harness{kube: kubefake.NewClientset()}
	h.gw = gwfake.NewSimpleClientset() // NewClientset has no Gateway schema for its field manager
	for _, g := range gws {
		if _, err := h.gw.GatewayV1().Gateways(g.Namespace).Create(context.Background(), g, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := gatewayinformers.NewSharedInformerFactory(h.gw, 0)
	inf := f.Gateway().V1().Gateways().Informer()
	cfg := testConfig()
	cfg.Workers = 1
	c, err := New(h.kube, h.gw.GatewayV1(), inf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		f.Shutdown()
	})
	return h
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
	}
}

func (h *harness) condition(t *testing.T, ns, name, typ string) *metav1.Condition {
	t.Helper()
	g, err := h.gw.GatewayV1().Gateways(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(g.Status.Conditions, typ)
}

func TestControllerDeploysAndReportsStatus(t *testing.T) {
	ctx := context.Background()
	h := start(t, testGateway())

	// Objects applied with the Gateway as owner.
	var dep *appsv1.Deployment
	eventually(t, "deployment", func() (bool, error) {
		var err error
		dep, err = h.kube.AppsV1().Deployments("demo").Get(ctx, "waypoint", metav1.GetOptions{})
		return err == nil, err
	})
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "weft/waypoint:dev" {
		t.Errorf("image %q", img)
	}
	if ref := metav1.GetControllerOf(dep); ref == nil || ref.UID != "gw-uid-1" {
		t.Errorf("deployment owner %+v", ref)
	}
	if _, err := h.kube.CoreV1().ServiceAccounts("demo").Get(ctx, "waypoint", metav1.GetOptions{}); err != nil {
		t.Errorf("service account: %v", err)
	}
	svc, err := h.kube.CoreV1().Services("demo").Get(ctx, "waypoint", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("service: %v", err)
	}

	// Accepted, not yet Programmed.
	eventually(t, "Programmed=False Pending", func() (bool, error) {
		c := h.condition(t, "demo", "waypoint", "Programmed")
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == ReasonPending, nil
	})
	if c := h.condition(t, "demo", "waypoint", "Accepted"); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != 1 {
		t.Errorf("Accepted condition %+v", c)
	}

	// A ready replica and a cluster IP: Programmed with the address.
	svc.Spec.ClusterIP = "10.96.0.42"
	if _, err := h.kube.CoreV1().Services("demo").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep.Status.Replicas, dep.Status.ReadyReplicas = 1, 1
	if _, err := h.kube.AppsV1().Deployments("demo").UpdateStatus(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Programmed=True with the address", func() (bool, error) {
		g, err := h.gw.GatewayV1().Gateways("demo").Get(ctx, "waypoint", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(g.Status.Conditions, "Programmed")
		return c != nil && c.Status == metav1.ConditionTrue && len(g.Status.Addresses) == 1 && g.Status.Addresses[0].Value == "10.96.0.42", nil
	})

	// A deleted Service comes back.
	if err := h.kube.CoreV1().Services("demo").Delete(ctx, "waypoint", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "service re-applied", func() (bool, error) {
		_, err := h.kube.CoreV1().Services("demo").Get(ctx, "waypoint", metav1.GetOptions{})
		return err == nil, nil
	})
	// Without a cluster IP the Gateway is no longer Programmed.
	eventually(t, "Programmed=False after the Service lost its address", func() (bool, error) {
		c := h.condition(t, "demo", "waypoint", "Programmed")
		return c != nil && c.Status == metav1.ConditionFalse, nil
	})
}

func TestControllerIgnoresOtherClasses(t *testing.T) {
	other := testGateway()
	other.Name, other.UID, other.Spec.GatewayClassName = "ingress", "gw-uid-2", "nginx"
	h := start(t, other, testGateway())
	ctx := context.Background()
	// The waypoint is handled; once it is, the other Gateway has been
	// seen too (same informer, one worker).
	eventually(t, "waypoint status", func() (bool, error) {
		return h.condition(t, "demo", "waypoint", "Accepted") != nil, nil
	})
	if _, err := h.kube.AppsV1().Deployments("demo").Get(ctx, "ingress", metav1.GetOptions{}); err == nil {
		t.Error("deployed a Gateway of another class")
	}
	if c := h.condition(t, "demo", "ingress", "Accepted"); c != nil {
		t.Errorf("wrote status on a Gateway of another class: %+v", c)
	}
}

func TestReadinessOf(t *testing.T) {
	gw := testGateway()
	ready := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1}}
	notReady := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1}}
	withIP := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1"}}
	noIP := &corev1.Service{}
	for _, tc := range []struct {
		name string
		dep  *appsv1.Deployment
		svc  *corev1.Service
		want bool
	}{
		{"nothing yet", nil, nil, false},
		{"no ready replica", notReady, withIP, false},
		{"no address", ready, noIP, false},
		{"ready", ready, withIP, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ReadinessOf(gw, tc.dep, tc.svc)
			if r.Programmed != tc.want || r.Reason == "" || r.Message == "" {
				t.Errorf("ReadinessOf = %+v, want Programmed %v with a reason and message", r, tc.want)
			}
		})
	}
}

func TestStatusForKeepsTransitionTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	pending := Readiness{Reason: ReasonPending, Message: "waiting"}
	st := StatusFor(gatewayv1.GatewayStatus{}, 1, pending, t0)
	st = StatusFor(st, 1, Readiness{Reason: ReasonPending, Message: "still waiting"}, t1)
	if c := meta.FindStatusCondition(st.Conditions, "Programmed"); !c.LastTransitionTime.Equal(&t0) || c.Message != "still waiting" {
		t.Errorf("unchanged status moved its transition time or kept an old message: %+v", c)
	}
	st = StatusFor(st, 2, Readiness{Programmed: true, Reason: "Programmed", Message: "ready", Address: "10.0.0.1"}, t1)
	c := meta.FindStatusCondition(st.Conditions, "Programmed")
	if c.Status != metav1.ConditionTrue || !c.LastTransitionTime.Equal(&t1) || c.ObservedGeneration != 2 {
		t.Errorf("Programmed %+v", c)
	}
	if len(st.Addresses) != 1 || st.Addresses[0].Value != "10.0.0.1" || *st.Addresses[0].Type != gatewayv1.IPAddressType {
		t.Errorf("addresses %+v", st.Addresses)
	}
}

// TestControllerRecreatedGateway: a Gateway deleted and created again
// under the same name (a new UID) gets its objects re-owned, and status
// for its own generation.
func TestControllerRecreatedGateway(t *testing.T) {
	ctx := context.Background()
	h := start(t, testGateway())
	eventually(t, "deployment owned by the first Gateway", func() (bool, error) {
		d, err := h.kube.AppsV1().Deployments("demo").Get(ctx, "waypoint", metav1.GetOptions{})
		return err == nil && metav1.GetControllerOf(d).UID == "gw-uid-1", nil
	})
	if err := h.gw.GatewayV1().Gateways("demo").Delete(ctx, "waypoint", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gw := testGateway()
	gw.UID = "gw-uid-2"
	if _, err := h.gw.GatewayV1().Gateways("demo").Create(ctx, gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deployment and service owned by the new Gateway", func() (bool, error) {
		d, err := h.kube.AppsV1().Deployments("demo").Get(ctx, "waypoint", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s, err := h.kube.CoreV1().Services("demo").Get(ctx, "waypoint", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(d.OwnerReferences) == 1 && d.OwnerReferences[0].UID == "gw-uid-2" &&
			len(s.OwnerReferences) == 1 && s.OwnerReferences[0].UID == "gw-uid-2", nil
	})
	eventually(t, "status on the new Gateway", func() (bool, error) {
		return h.condition(t, "demo", "waypoint", "Accepted") != nil, nil
	})
}
