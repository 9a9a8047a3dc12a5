package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/weftmesh/weft/istiod-lite/ca"
	"github.com/weftmesh/weft/istiod-lite/gatewayclass"
	"github.com/weftmesh/weft/istiod-lite/kube"
	"github.com/weftmesh/weft/istiod-lite/model"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
	"google.golang.org/grpc"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

type seen struct {
	mu   sync.Mutex
	have map[string]bool
}

func (s *seen) Apply(_ string, rs []*discoveryv3.Resource, removed []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		s.have[r.Name] = true
	}
	for _, n := range removed {
		delete(s.have, n)
	}
	return nil
}

func (s *seen) has(n string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.have[n]
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// TestRunServesXDSAndCA runs the assembled server against a fake API
// server: TLS xDS with a bearer token, readiness, metrics, debug dumps,
// and a prompt graceful shutdown with a client connected.
func TestRunServesXDSAndCA(t *testing.T) {
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	kc := kubefake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "demo"}, Status: corev1.PodStatus{PodIP: "10.0.0.1"}},
	)
	kc.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		if tr.Spec.Token == "good" {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "system:serviceaccount:istio-system:ztunnel"}}
		}
		return true, tr, nil
	})
	cfg := Defaults()
	cfg.XDSAddr, cfg.MonitoringAddr, cfg.DebugAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.Log = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	gw := gwfake.NewClientset()
	go func() { done <- run(ctx, cfg, kube.Clients{Kube: kc, Gateway: gw}, time.Now()) }()

	get := func(addr, path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, func() bool { code, _ := get(cfg.MonitoringAddr, "/ready"); return code == 200 })

	// The waypoint GatewayClass is created and accepted by istiod-lite, not the install.
	waitFor(t, func() bool {
		gc, err := gw.GatewayV1().GatewayClasses().Get(ctx, gatewayclass.Name, metav1.GetOptions{})
		return err == nil && apimeta.IsStatusConditionTrue(gc.Status.Conditions, "Accepted")
	})

	sec, err := kc.CoreV1().Secrets("istio-system").Get(ctx, ca.SelfSignedSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(sec.Data["root-cert.pem"])
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "istiod.istio-system.svc", MinVersion: tls.VersionTLS12}

	st := &seen{have: map[string]bool{}}
	c := xdsclient.NewClient(xdsclient.Config{Address: cfg.XDSAddr, TLS: tlsCfg, Types: []string{model.AddressType, model.AuthorizationType}, Handler: st,
		DialOptions: []grpc.DialOption{grpc.WithPerRPCCredentials(bearer("good"))}})
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	waitFor(t, func() bool { return st.has("Kubernetes//Pod/demo/a") })

	// A bad token is refused.
	bad := xdsclient.NewClient(xdsclient.Config{Address: cfg.XDSAddr, TLS: tlsCfg, Types: []string{model.AddressType}, Handler: &seen{have: map[string]bool{}},
		DialOptions: []grpc.DialOption{grpc.WithPerRPCCredentials(bearer("bad"))}, InitialBackoff: time.Hour})
	bctx, bcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := bad.Run(bctx); err != nil {
		t.Errorf("bad-token client Run: %v", err)
	}
	bcancel()
	if bad.Status().Types[model.AddressType].ACKs != 0 {
		t.Error("bad token got data")
	}

	if _, body := get(cfg.MonitoringAddr, "/metrics"); !strings.Contains(body, `weft_model_objects{kind="pods"} 1`) || !strings.Contains(body, "weft_xds_connected_clients 1") {
		t.Errorf("metrics missing figures:\n%s", grep(body, "weft_"))
	}
	if code, body := get(cfg.DebugAddr, "/debug/clients"); code != 200 || !strings.Contains(body, "system:serviceaccount:istio-system:ztunnel") {
		t.Errorf("debug clients %d %s", code, body)
	}
	if code, body := get(cfg.DebugAddr, "/debug/model"); code != 200 || !strings.Contains(body, "Kubernetes//Pod/demo/a") {
		t.Errorf("debug model %d %s", code, body)
	}

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown took too long")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	ccancel()
	if err := <-cdone; err != nil {
		t.Errorf("xds client Run: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Defaults()
	cfg.DebugAddr = "0.0.0.0:9876"
	if err := cfg.Validate(); err == nil {
		t.Error("non-loopback debug address accepted")
	}
	cfg = Defaults()
	if err := cfg.Validate(); err != nil || cfg.RootNamespace != "istio-system" {
		t.Errorf("defaults: %v %q", err, cfg.RootNamespace)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
