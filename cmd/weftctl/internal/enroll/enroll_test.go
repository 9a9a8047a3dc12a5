package enroll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func pod(name, node string, phase corev1.PodPhase, ann map[string]string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Annotations: ann, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
}

func agent(node string, isReady bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if isReady {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "weft-cni-agent-" + node, Namespace: "weft-system", Labels: map[string]string{"app": "weft-cni-agent"}},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func TestSetLabel(t *testing.T) {
	kc := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}})
	ctx := context.Background()
	if err := SetLabel(ctx, kc, "demo", true); err != nil {
		t.Fatal(err)
	}
	ns, _ := kc.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{})
	if ns.Labels[DataplaneModeLabel] != "ambient" {
		t.Fatalf("labels after enroll: %v", ns.Labels)
	}
	if err := SetLabel(ctx, kc, "demo", false); err != nil {
		t.Fatal(err)
	}
	ns, _ = kc.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{})
	if _, ok := ns.Labels[DataplaneModeLabel]; ok {
		t.Fatalf("labels after unenroll: %v", ns.Labels)
	}
	if err := SetLabel(ctx, kc, "nope", true); err == nil {
		t.Fatal("enrolled a missing namespace")
	}
}

func TestCheck(t *testing.T) {
	on := map[string]string{RedirectionAnnotation: "enabled"}
	kc := fake.NewClientset(
		agent("node-a", true), agent("node-b", false),
		pod("ok", "node-a", corev1.PodRunning, on, nil),
		pod("opted-out", "node-a", corev1.PodRunning, nil, map[string]string{DataplaneModeLabel: "none"}),
		pod("done", "node-a", corev1.PodSucceeded, nil, nil),
		pod("pending-ann", "node-a", corev1.PodRunning, map[string]string{RedirectionAnnotation: "pending"}, nil),
		pod("no-ann", "node-a", corev1.PodRunning, nil, nil),
		pod("agent-unready", "node-b", corev1.PodRunning, nil, nil),
		pod("no-agent", "node-c", corev1.PodRunning, nil, nil),
		pod("unscheduled", "", corev1.PodPending, nil, nil),
	)
	got, err := Check(context.Background(), kc, "weft-system", "demo", true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Stuck{
		{Pod: "agent-unready", Node: "node-b", Reason: "weft-cni-agent weft-cni-agent-node-b on node node-b is not ready (is ztunnel on that node up?)"},
		{Pod: "no-agent", Node: "node-c", Reason: "no weft-cni-agent pod on node node-c: the node agent is not running there"},
		{Pod: "no-ann", Node: "node-a", Reason: "no ambient.istio.io/redirection annotation: the node agent on node-a has not enrolled it (see `kubectl -n demo describe pod no-ann` events)"},
		{Pod: "pending-ann", Node: "node-a", Reason: "annotated ambient.istio.io/redirection=pending: the agent set up redirection but ztunnel on node node-a has not taken the pod yet"},
		{Pod: "unscheduled", Reason: "not scheduled yet"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Check (-want +got):\n%s", diff)
	}
	got, _ = Check(context.Background(), kc, "weft-system", "demo", false)
	if len(got) != 2 || got[0].Pod != "ok" || got[1].Pod != "pending-ann" {
		t.Errorf("unenroll check: %v", got)
	}
}

func TestWaitTimesOutWithStuck(t *testing.T) {
	kc := fake.NewClientset(pod("no-ann", "node-a", corev1.PodRunning, nil, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	stuck, err := Wait(ctx, kc, "weft-system", "demo", true, 5*time.Millisecond)
	if err != nil || len(stuck) != 1 {
		t.Fatalf("Wait = %v, %v", stuck, err)
	}
}

// A Check cut short by the deadline (the client's rate limiter or the
// request itself gives up) still yields the stuck pods seen before it.
func TestWaitDeadlineDuringCheck(t *testing.T) {
	kc := fake.NewClientset(pod("no-ann", "node-a", corev1.PodRunning, nil, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	kc.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() != "demo" {
			return false, nil, nil
		}
		calls++
		if calls > 1 {
			cancel()
			return true, nil, fmt.Errorf("client rate limiter Wait returned an error: %w", context.DeadlineExceeded)
		}
		return false, nil, nil
	})
	stuck, err := Wait(ctx, kc, "weft-system", "demo", true, time.Millisecond)
	if err != nil || len(stuck) != 1 || stuck[0].Pod != "no-ann" {
		t.Fatalf("Wait = %v, %v; want the stuck pod and no error", stuck, err)
	}
}

// The wait's deadline does not cut a check short; cancelling (Ctrl-C)
// does.
func TestCheckContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	cctx, ccancel := checkContext(ctx)
	defer ccancel()
	<-ctx.Done()
	time.Sleep(10 * time.Millisecond)
	if cctx.Err() != nil {
		t.Fatalf("check context ended with the wait's deadline: %v", cctx.Err())
	}
	if dl, ok := cctx.Deadline(); !ok || time.Until(dl) > checkTimeout {
		t.Fatalf("check context deadline %v, %v", dl, ok)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	cctx2, ccancel2 := checkContext(ctx2)
	defer ccancel2()
	cancel2()
	select {
	case <-cctx2.Done():
	case <-time.After(time.Second):
		t.Fatal("check context outlived a cancelled wait")
	}
}
