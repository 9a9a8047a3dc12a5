package kube

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/istiod-lite/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTransformPodKeepsOnlyUsedFields(t *testing.T) {
	ctrl := true
	in := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7",
			Labels:          map[string]string{"app": "a"},
			Annotations:     map[string]string{"ambient.istio.io/redirection": "enabled", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Node", Name: "x"}, {Kind: "ReplicaSet", Name: "rs", Controller: &ctrl}},
			Finalizers:      []string{"f"},
		},
		Spec: corev1.PodSpec{
			NodeName: "n", ServiceAccountName: "sa",
			Containers: []corev1.Container{
				{Name: "app", Image: "img", Env: []corev1.EnvVar{{Name: "A", Value: "B"}}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9}}},
				{Name: "side", Image: "img2"},
			},
			Volumes: []corev1.Volume{{Name: "v"}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}, HostIP: "1.1.1.1",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "r"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app"}},
		},
	}
	got, err := Transform(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &model.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7",
			Labels:          map[string]string{"app": "a"},
			Annotations:     map[string]string{"ambient.istio.io/redirection": "enabled"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs", Controller: &ctrl}},
		},
		NodeName: "n", ServiceAccount: "sa",
		NamedPorts: []model.NamedPort{{Name: "http", Port: 8080}},
		Phase:      corev1.PodRunning, IPs: []string{"10.0.0.1"}, Ready: true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
