package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// tokenUser is what the fake TokenReview reports for a token.
type tokenUser struct {
	user      string // system:serviceaccount:<ns>:<sa>
	audiences []string
	pod, node string
}

// fakeCluster is a fake clientset with a TokenReview reactor.
type fakeCluster struct {
	kube    *fake.Clientset
	reviews atomic.Int32

	mu     sync.Mutex
	tokens map[string]tokenUser
	fail   error // returned by TokenReview when set
}

func ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

func pod(namespace, name, sa, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// newFakeCluster has namespaces istio-system, demo and other; ztunnel pods
// on node-a and node-b; demo/app on node-a, demo/db on node-b.
func newFakeCluster(extra ...runtime.Object) *fakeCluster {
	objs := []runtime.Object{
		ns("istio-system"), ns("demo"), ns("other"),
		pod("istio-system", "ztunnel-a", "ztunnel", "node-a"),
		pod("istio-system", "ztunnel-b", "ztunnel", "node-b"),
		pod("demo", "app-1", "app", "node-a"),
		pod("demo", "db-1", "db", "node-b"),
		pod("demo", "done-1", "batch", "node-a"),
	}
	objs[len(objs)-1].(*corev1.Pod).Status.Phase = corev1.PodSucceeded
	fc := &fakeCluster{kube: fake.NewClientset(append(objs, extra...)...), tokens: map[string]tokenUser{
		"tok-app":       {user: "system:serviceaccount:demo:app", audiences: []string{"istio-ca"}, pod: "app-1", node: "node-a"},
		"tok-ztunnel-a": {user: "system:serviceaccount:istio-system:ztunnel", audiences: []string{"istio-ca"}, pod: "ztunnel-a", node: "node-a"},
		"tok-ztunnel-x": {user: "system:serviceaccount:istio-system:ztunnel", audiences: []string{"istio-ca"}}, // not pod-bound
		"tok-app-k8s":   {user: "system:serviceaccount:demo:app", audiences: []string{"https://kubernetes.default.svc"}, pod: "app-1", node: "node-a"},
		"tok-user":      {user: "alice", audiences: []string{"istio-ca"}},
	}}
	fc.kube.PrependReactor("create", "tokenreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		fc.reviews.Add(1)
		review := action.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		fc.mu.Lock()
		u, ok := fc.tokens[review.Spec.Token]
		fail := fc.fail
		fc.mu.Unlock()
		if fail != nil {
			return true, nil, fail
		}
		if !ok {
			review.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
			return true, review, nil
		}
		var common []string
		for _, a := range review.Spec.Audiences {
			if slices.Contains(u.audiences, a) {
				common = append(common, a)
			}
		}
		if len(common) == 0 {
			review.Status = authnv1.TokenReviewStatus{Error: "token audiences are invalid for the target audiences"}
			return true, review, nil
		}
		extra := map[string]authnv1.ExtraValue{}
		if u.pod != "" {
			extra[extraPodName] = authnv1.ExtraValue{u.pod}
			extra[extraPodUID] = authnv1.ExtraValue{"uid-" + u.pod}
		}
		if u.node != "" {
			extra[extraNodeName] = authnv1.ExtraValue{u.node}
		}
		review.Status = authnv1.TokenReviewStatus{
			Authenticated: true,
			Audiences:     common,
			User:          authnv1.UserInfo{Username: u.user, Extra: extra},
		}
		return true, review, nil
	})
	return fc
}

// testCA is a running CA served over gRPC+TLS on loopback.
type testCA struct {
	srv   *Server
	addr  string
	reg   *prometheus.Registry
	roots *x509.CertPool
}

func startCA(t testing.TB, fc *fakeCluster, mutate func(*Config)) *testCA {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	cfg := Config{Registerer: reg, MaxValidity: 48 * time.Hour}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(ctx, cfg, fc.kube)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(srv.ServerTLSConfig())))
	srv.Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(ln) })
	runErr := make(chan error, 1)
	wg.Go(func() { runErr <- srv.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		gs.Stop()
		wg.Wait()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !srv.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("CA not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Root())
	return &testCA{srv: srv, addr: ln.Addr().String(), reg: reg, roots: roots}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errNotYet = errors.New("not yet")
