package gatewayclass

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

var (
	t0       = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fixedNow = func() time.Time { return t0 }
	resource = schema.GroupResource{Group: "gateway.networking.k8s.io", Resource: "gatewayclasses"}
)

// fakeClient is the Gateway API fake, with field management as the API
// server does it.
func fakeClient(objs ...runtime.Object) *gwfake.Clientset {
	return gwfake.NewClientset(objs...)
}

func class(controller gatewayv1.GatewayController, conds ...metav1.Condition) *gatewayv1.GatewayClass {
	return &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Generation: 2},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: controller},
		Status:     gatewayv1.GatewayClassStatus{Conditions: conds},
	}
}

func acceptedCond(gen int64) metav1.Condition {
	return metav1.Condition{
		Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: AcceptedMessage,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(t0),
	}
}

func writes(c *gwfake.Clientset) []string {
	var out []string
	for _, a := range c.Actions() {
		if a.GetVerb() != "get" {
			out = append(out, a.GetVerb()+"/"+a.GetSubresource())
		}
	}
	return out
}

func TestEnsure(t *testing.T) {
	for _, tc := range []struct {
		name       string
		existing   []runtime.Object
		wantErr    string
		wantWrites []string
		want       *gatewayv1.GatewayClass // nil: Desired() with Accepted at generation 0
	}{
		{name: "absent: created and accepted", wantWrites: []string{"create/", "update/status"}},
		{
			name: "present without status: accepted", existing: []runtime.Object{class(ControllerName)},
			wantWrites: []string{"update/status"}, want: class(ControllerName, acceptedCond(2)),
		},
		{
			name: "accepted for an older generation: re-accepted", existing: []runtime.Object{class(ControllerName, acceptedCond(1))},
			wantWrites: []string{"update/status"}, want: class(ControllerName, acceptedCond(2)),
		},
		{
			name: "already accepted: no write", existing: []runtime.Object{class(ControllerName, acceptedCond(2))},
			want: class(ControllerName, acceptedCond(2)),
		},
		{
			name: "another controller's class: untouched", existing: []runtime.Object{class("example.com/other")},
			wantErr: `names controller "example.com/other"`, want: class("example.com/other"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient(tc.existing...)
			err := Ensure(t.Context(), c.GatewayV1(), fixedNow)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Ensure error %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantWrites, writes(c)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			want := tc.want
			if want == nil {
				want = Desired()
				want.Status.Conditions = []metav1.Condition{acceptedCond(0)}
			}
			got, err := c.GatewayV1().GatewayClasses().Get(t.Context(), Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got.ResourceVersion, got.ManagedFields, got.TypeMeta = "", nil, metav1.TypeMeta{}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("class (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredDescriptionFitsTheCRD(t *testing.T) {
	if d := Desired().Spec.Description; d == nil || len(*d) == 0 || len(*d) > 64 {
		t.Errorf("description %v must be 1..64 bytes", d)
	}
}

// Two replicas start at once: the second one's create loses the race.
func TestEnsureAfterLosingTheCreateRace(t *testing.T) {
	c := fakeClient()
	c.PrependReactor("create", "gatewayclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		if err := c.Tracker().Add(class(ControllerName)); err != nil {
			t.Error(err)
		}
		return true, nil, apierrors.NewAlreadyExists(resource, Name)
	})
	if err := Ensure(t.Context(), c.GatewayV1(), fixedNow); err != nil {
		t.Fatal(err)
	}
	got, err := c.GatewayV1().GatewayClasses().Get(t.Context(), Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(got.Status.Conditions, "Accepted") {
		t.Errorf("conditions %v", got.Status.Conditions)
	}
}

// The Gateway API CRD is not served for the first passes (the API server
// answers 404 for an unknown resource); Run retries until it is, and puts
// a deleted class back.
func TestRunRetriesUntilTheCRDIsServedAndKeepsTheClass(t *testing.T) {
	c := fakeClient()
	var mu sync.Mutex
	unserved := 3
	c.PrependReactor("*", "gatewayclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if unserved > 0 {
			unserved--
			return true, nil, apierrors.NewNotFound(resource, "")
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, c.GatewayV1(), Config{
			Log: slog.New(slog.DiscardHandler), MinRetry: time.Millisecond, MaxRetry: 4 * time.Millisecond,
			Resync: 5 * time.Millisecond, Now: fixedNow,
		})
	}()
	waitAccepted := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			gc, err := c.GatewayV1().GatewayClasses().Get(t.Context(), Name, metav1.GetOptions{})
			if err == nil && meta.IsStatusConditionTrue(gc.Status.Conditions, "Accepted") {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatal("the class was never created and accepted")
	}
	waitAccepted()
	if err := c.GatewayV1().GatewayClasses().Delete(t.Context(), Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAccepted()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
