//go:build e2e

package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/caclient"
	"github.com/weftmesh/weft/pkg/netns"
)

const (
	systemNS    = "weft-system"
	trustDomain = "cluster.local"
	audience    = "istio-ca"
	// servingName is on istiod-lite's serving certificate (Service istiod).
	servingName = "istiod.weft-system.svc"
)

// env is a lab with istiod-lite installed from manifests/.
type env struct {
	l  *lab.Lab
	cs *kubernetes.Clientset
	// node1 is the first node's network namespace: it routes to every pod
	// IP (host-gw), so the test process dials pods from there.
	node1 *netns.NetNS
}

// setup starts a 2-node lab and installs the CRDs and istiod-lite as a
// user does, with kubectl apply -k of the repository's manifests.
func setup(t testing.TB) *env {
	t.Helper()
	start := time.Now()
	l := lab.Start(t, lab.Options{Nodes: 2})
	t.Logf("lab %s up in %s", l.Name(), time.Since(start).Round(100*time.Millisecond))
	e := &env{l: l, cs: l.Clientset()}
	ns, err := netns.Open(filepath.Join("/run/netns", l.Nodes()[0].Netns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	e.node1 = ns

	root := l.Cluster().Root
	start = time.Now()
	if _, err := l.Kubectl("apply", "--server-side", "-k", filepath.Join(root, "manifests", "base", "crds")); err != nil {
		t.Fatalf("apply CRDs (run `go run ./cmd/weft-build crds` first): %v", err)
	}
	if _, err := l.Kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"namespace.yaml", "istiod-lite"} {
		args := []string{"apply", "--server-side", "-f", filepath.Join(root, "manifests", "base", p)}
		if !strings.HasSuffix(p, ".yaml") {
			args[2] = "-k"
		}
		if _, err := l.Kubectl(args...); err != nil {
			t.Fatalf("apply manifests/base/%s: %v", p, err)
		}
	}
	e.waitIstiod(t, 2)
	t.Logf("CRDs and istiod-lite (2 replicas) ready in %s", time.Since(start).Round(100*time.Millisecond))
	return e
}

// waitIstiod waits until n istiod-lite pods are Ready and none is
// terminating, and returns them.
func (e *env) waitIstiod(t testing.TB, n int) []corev1.Pod {
	t.Helper()
	return e.waitPods(t, systemNS, "app=istiod-lite", n, 3*time.Minute)
}

func (e *env) waitPods(t testing.TB, ns, selector string, n int, limit time.Duration) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var ready []corev1.Pod
	var total int
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		ready, total = ready[:0], len(list.Items)
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready = append(ready, p)
			}
		}
		return len(ready) == n && total == n, nil
	})
	if err != nil {
		out, _ := e.l.Kubectl("get", "pods", "-A", "-o", "wide")
		ev, _ := e.l.Kubectl("get", "events", "-n", ns)
		t.Fatalf("%d Ready pods %s in %s (have %d of %d): %v\n%s\n%s", n, selector, ns, len(ready), total, err, out, ev)
	}
	return ready
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// dialer makes gRPC connect from the first node's network namespace.
func (e *env) dialer() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return e.node1.Dial(ctx, nil, "tcp", addr)
	})
}

// rootPEM returns the root certificate istiod-lite published in ns.
func (e *env) rootPEM(ctx context.Context, ns string) (string, error) {
	cm, err := e.cs.CoreV1().ConfigMaps(ns).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	pem := cm.Data["root-cert.pem"]
	if pem == "" {
		return "", fmt.Errorf("configmap %s/istio-ca-root-cert has no root-cert.pem", ns)
	}
	return pem, nil
}

func (e *env) rootPool(t testing.TB) *x509.CertPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var pem string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		pem, err = e.rootPEM(ctx, systemNS)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no istio-ca-root-cert in %s: %v", systemNS, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		t.Fatal("istio-ca-root-cert holds no certificate")
	}
	return pool
}

// token asks the API server for a token of ns/sa with audience aud, bound
// to pod when pod is not nil (kubectl create token --bound-object-kind Pod).
func (e *env) token(ctx context.Context, ns, sa, aud string, pod *corev1.Pod) (string, error) {
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{aud}}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := e.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", ns, sa, err)
	}
	return tr.Status.Token, nil
}

// caClient returns a CA client for the istiod-lite pod at addr that sends
// token, impersonating the requested identity when impersonate is set.
func (e *env) caClient(t testing.TB, addr string, roots *x509.CertPool, token string, impersonate bool) *caclient.Client {
	t.Helper()
	c, err := caclient.New(caclient.Config{
		Address: addr, ServerName: servingName, RootCAs: roots,
		Token:       func() (string, error) { return token, nil },
		Impersonate: impersonate,
		DialOptions: []grpc.DialOption{e.dialer()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// issue makes a key and CSR for id and asks c to sign it.
func issue(ctx context.Context, c *caclient.Client, id identity.ID) (*identity.Certificate, error) {
	key, err := identity.GenerateKey()
	if err != nil {
		return nil, err
	}
	csr, err := identity.NewCSR(key, id)
	if err != nil {
		return nil, err
	}
	chainPEM, err := c.Fetch(ctx, id, csr, time.Hour)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for _, p := range chainPEM {
		certs, err := identity.ParseCertificates([]byte(p))
		if err != nil {
			return nil, err
		}
		chain = append(chain, certs...)
	}
	return identity.NewCertificate(key, chain)
}

// xdsTLS is a ztunnel-like client TLS config: the CA-issued certificate
// cert, istiod-lite's serving name verified against roots.
func xdsTLS(cert *identity.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13, ServerName: servingName, RootCAs: roots,
		Certificates: []tls.Certificate{*cert.TLSCertificate()},
	}
}

func podAddr(p corev1.Pod, port string) string { return net.JoinHostPort(p.Status.PodIP, port) }
