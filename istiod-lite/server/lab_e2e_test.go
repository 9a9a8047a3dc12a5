//go:build e2e

package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
	"google.golang.org/protobuf/proto"
	secv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// labState is what the test's xDS client holds.
type labState struct {
	mu    sync.Mutex
	wl    map[string]*workloadapi.Workload
	authz map[string]bool
	seen  map[string]time.Time
}

func (s *labState) Apply(t string, rs []*discoveryv3.Resource, removed []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		s.seen[r.Name] = time.Now()
		if t == xdsclient.AuthorizationType {
			s.authz[r.Name] = true
			continue
		}
		var a workloadapi.Address
		if err := proto.Unmarshal(r.GetResource().GetValue(), &a); err != nil {
			return err
		}
		if w := a.GetWorkload(); w != nil {
			s.wl[r.Name] = w
		}
	}
	for _, n := range removed {
		delete(s.wl, n)
		delete(s.authz, n)
	}
	return nil
}

func (s *labState) check(f func(*labState) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s)
}

// TestLab runs istiod-lite in process against a real API server
// (WEFT_KUBECONFIG, with the Istio security CRDs installed) and checks what
// an xDS client sees: a pod within a second of becoming Ready, its
// tunnel protocol following the namespace label, an AuthorizationPolicy as
// an Authorization, and the pod leaving when deleted. The pod is bound to
// a node that does not exist, so no kubelet touches its status.
func TestLab(t *testing.T) {
	kubeconfig := os.Getenv("WEFT_KUBECONFIG")
	if kubeconfig == "" {
		t.Skip("set WEFT_KUBECONFIG")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(rc)
	ic := istioclient.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ns := fmt.Sprintf("wt-istiod-%06d", rand.IntN(1e6))
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kc.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})

	cfg := Defaults()
	cfg.Kubeconfig = kubeconfig
	cfg.XDSAddr, cfg.DebugAddr = "", "" // no CA: plaintext only
	cfg.PlaintextAddr, cfg.MonitoringAddr = freeAddr(t), freeAddr(t)
	cfg.RequireRedirection = false // no node agent annotates a pod on a missing node
	cfg.Log = slog.New(slog.DiscardHandler)
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(sctx, cfg) }()
	t.Cleanup(func() {
		scancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	st := &labState{wl: map[string]*workloadapi.Workload{}, authz: map[string]bool{}, seen: map[string]time.Time{}}
	c := xdsclient.NewClient(xdsclient.Config{Address: cfg.PlaintextAddr, Types: []string{xdsclient.AddressType, xdsclient.AuthorizationType}, Handler: st, InitialBackoff: 50 * time.Millisecond})
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	t.Cleanup(func() {
		ccancel()
		if err := <-cdone; err != nil {
			t.Errorf("xds client Run: %v", err)
		}
	})
	select {
	case <-c.Synced():
	case <-ctx.Done():
		t.Fatal("xds client never synced")
	}

	uid := "Kubernetes//Pod/" + ns + "/web"
	pod, err := kc.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "wt-istiod-no-such-node", Containers: []corev1.Container{{Name: "c", Image: "none"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "100.127.0.9", PodIPs: []corev1.PodIP{{IP: "100.127.0.9"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	readyAt := time.Now()
	if _, err := kc.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st.eventually(t, ctx, "pod seen healthy", func(s *labState) bool {
		w := s.wl[uid]
		return w != nil && w.GetStatus() == workloadapi.WorkloadStatus_HEALTHY
	})
	st.mu.Lock()
	seenAt, proto0 := st.seen[uid], st.wl[uid].GetTunnelProtocol()
	st.mu.Unlock()
	if d := seenAt.Sub(readyAt); d > time.Second {
		t.Errorf("pod seen %s after becoming Ready, want < 1s", d)
	} else {
		t.Logf("pod seen %s after becoming Ready", d)
	}
	if proto0 != workloadapi.TunnelProtocol_NONE {
		t.Fatal("pod in an unlabelled namespace has HBONE")
	}

	label := func(v string) {
		n, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v == "" {
			delete(n.Labels, model.LabelDataplaneMode)
		} else {
			n.Labels[model.LabelDataplaneMode] = v
		}
		if _, err := kc.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	label(model.DataplaneModeAmbient)
	st.eventually(t, ctx, "HBONE after labelling", func(s *labState) bool { return s.wl[uid].GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE })
	label("")
	st.eventually(t, ctx, "NONE after unlabelling", func(s *labState) bool { return s.wl[uid].GetTunnelProtocol() == workloadapi.TunnelProtocol_NONE })

	ap := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-web", Namespace: ns},
		Spec: secv1beta1.AuthorizationPolicy{Rules: []*secv1beta1.Rule{{From: []*secv1beta1.Rule_From{{Source: &secv1beta1.Source{Namespaces: []string{ns}}}}}}}}
	if _, err := ic.SecurityV1().AuthorizationPolicies(ns).Create(ctx, ap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	st.eventually(t, ctx, "authorization", func(s *labState) bool { return s.authz[ns+"/allow-web"] })

	if err := kc.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	st.eventually(t, ctx, "pod removed", func(s *labState) bool { return s.wl[uid] == nil })
}

func (s *labState) eventually(t *testing.T, ctx context.Context, what string, f func(*labState) bool) {
	t.Helper()
	for !s.check(f) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not seen", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
