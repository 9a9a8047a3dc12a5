package manifests

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSamples(t *testing.T) {
	objs, err := Render("samples")
	if err != nil {
		t.Fatal(err)
	}
	all := typed(t, objs)
	for _, u := range objs {
		if u.GetKind() != "Namespace" && u.GetNamespace() != "demo" {
			t.Errorf("%s %s is in namespace %q, want demo", u.GetKind(), u.GetName(), u.GetNamespace())
		}
	}
	nsObj := get[*corev1.Namespace](t, all, "Namespace//demo")
	if _, ok := nsObj.Labels["istio.io/dataplane-mode"]; ok {
		t.Error("the demo namespace starts outside the mesh; the demo labels it")
	}
	checkWorkloads(t, all, "weft/echo")

	echo := get[*appsv1.Deployment](t, all, "Deployment/demo/echo")
	svc := get[*corev1.Service](t, all, "Service/demo/echo")
	if !selects(t, metav1.SetAsLabelSelector(svc.Spec.Selector), echo.Spec.Template.Labels) {
		t.Errorf("Service echo selects %v, pods are labelled %v", svc.Spec.Selector, echo.Spec.Template.Labels)
	}
	if echo.Spec.Replicas == nil || *echo.Spec.Replicas < 2 {
		t.Error("echo needs two replicas so that requests cross nodes and spread")
	}
	for _, sp := range svc.Spec.Ports {
		if !declaresPort(echo.Spec.Template.Spec.Containers[0], sp.TargetPort.IntValue()) {
			t.Errorf("Service port %d targets an undeclared port", sp.Port)
		}
	}
	client := get[*appsv1.Deployment](t, all, "Deployment/demo/client")
	if client.Spec.Template.Spec.ServiceAccountName == echo.Spec.Template.Spec.ServiceAccountName {
		t.Error("client and server need distinct identities for policy demos")
	}
}
