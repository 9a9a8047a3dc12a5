//go:build e2e

package controlplane

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/weftmesh/weft/pkg/identity"
)

const caNS = "cp-ca"

// sleeper is a pod running the lab's echo server on a fixed node with a
// service account, optionally with a projected istio-ca token like the
// one ztunnel and Istio's proxies mount.
func sleeper(ns, name, sa, node string, istioToken bool) string {
	vol, mount := "", ""
	if istioToken {
		mount = `
    volumeMounts:
    - {name: istio-token, mountPath: /var/run/secrets/tokens}`
		vol = `
  volumes:
  - name: istio-token
    projected:
      sources:
      - serviceAccountToken: {audience: istio-ca, expirationSeconds: 3600, path: istio-token}`
	}
	return fmt.Sprintf(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: %[3]s, namespace: %[1]s}
---
apiVersion: v1
kind: Pod
metadata:
  name: %[2]s
  namespace: %[1]s
  labels: {app: %[2]s}
spec:
  serviceAccountName: %[3]s
  nodeName: %[4]s
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: weft/echo:latest
    args: ["serve", "--http", ":8080", "--tcp", "", "--grpc", ""]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1%[5]s%[6]s
`, ns, name, sa, node, mount, vol)
}

// testCA checks the CA of the istiod-lite Deployment against the lab's
// API server (issue 4, lab part).
func testCA(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n1, n2 := e.l.Nodes()[0].Name, e.l.Nodes()[1].Name
	manifest := "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + caNS + "}\n---" +
		sleeper(caNS, "app-1", "app", n1, true) + "---" +
		sleeper(caNS, "other-2", "other", n2, false) + "---" +
		sleeper(systemNS, "ztunnel-1", "ztunnel", n1, false)
	if err := e.l.Apply(manifest); err != nil {
		t.Fatal(err)
	}
	app := e.waitPods(t, caNS, "app=app-1", 1, 2*time.Minute)[0]
	e.waitPods(t, caNS, "app=other-2", 1, 2*time.Minute)
	zt := e.waitPods(t, systemNS, "app=ztunnel-1", 1, 2*time.Minute)[0]

	roots := e.rootPool(t)
	istiods := e.waitIstiod(t, 2)
	addr := podAddr(istiods[0], "15012")
	appID := identity.MustParseID("spiffe://cluster.local/ns/" + caNS + "/sa/app")
	otherID := identity.MustParseID("spiffe://cluster.local/ns/" + caNS + "/sa/other")

	var root []byte // DER of the root every certificate chains to
	verify := func(t *testing.T, c *identity.Certificate, want identity.ID) {
		t.Helper()
		chain := append(append([]*x509.Certificate{c.Leaf}, c.Intermediates...), c.Roots...)
		got, err := identity.VerifyChain(chain, identity.VerifyOptions{Roots: roots, TrustDomain: trustDomain, Expected: []identity.ID{want}})
		if err != nil || got != want {
			t.Errorf("certificate for %s: verify = %s, %v", want, got, err)
		}
		if len(c.Roots) != 1 {
			t.Fatalf("chain ends with %d roots, want 1", len(c.Roots))
		}
		if root == nil {
			root = c.Roots[0].Raw
		} else if !bytes.Equal(root, c.Roots[0].Raw) {
			t.Errorf("certificate for %s chains to another root", want)
		}
	}
	refused := func(t *testing.T, err error, what string, codes_ ...codes.Code) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: signed, want refused", what)
		}
		st := status.Convert(err)
		for _, c := range codes_ {
			if st.Code() == c {
				t.Logf("%s: refused: %s: %s", what, st.Code(), st.Message())
				return
			}
		}
		t.Errorf("%s: %v, want code %v", what, err, codes_)
	}

	t.Run("pod's projected token gets its own identity", func(t *testing.T) {
		tok, err := e.l.Kubectl("exec", "-n", caNS, app.Name, "--", "cat", "/var/run/secrets/tokens/istio-token")
		if err != nil {
			t.Fatalf("read the projected token: %v", err)
		}
		start := time.Now()
		c, err := issue(ctx, e.caClient(t, addr, roots, strings.TrimSpace(tok), false), appID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("signed %s in %s (first call: TLS, TokenReview)", c.ID, time.Since(start).Round(time.Millisecond))
		verify(t, c, appID)
	})

	t.Run("pod-bound TokenRequest token gets its own identity from each replica", func(t *testing.T) {
		tok, err := e.token(ctx, caNS, "app", audience, &app)
		if err != nil {
			t.Fatal(err)
		}
		// Both replicas started at once; they must sign with one root.
		for _, p := range istiods {
			c, err := issue(ctx, e.caClient(t, podAddr(p, "15012"), roots, tok, false), appID)
			if err != nil {
				t.Fatalf("replica %s: %v", p.Name, err)
			}
			verify(t, c, appID)
		}
	})

	t.Run("other identity without impersonation is refused", func(t *testing.T) {
		tok, err := e.token(ctx, caNS, "app", audience, &app)
		if err != nil {
			t.Fatal(err)
		}
		_, err = issue(ctx, e.caClient(t, addr, roots, tok, false), otherID)
		refused(t, err, "app asks for other", codes.PermissionDenied, codes.InvalidArgument)
	})

	t.Run("ztunnel gets a cert for a pod on its node", func(t *testing.T) {
		tok, err := e.token(ctx, systemNS, "ztunnel", audience, &zt)
		if err != nil {
			t.Fatal(err)
		}
		c, err := issue(ctx, e.caClient(t, addr, roots, tok, true), appID)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, c, appID)
	})

	t.Run("ztunnel is refused a pod on another node", func(t *testing.T) {
		tok, err := e.token(ctx, systemNS, "ztunnel", audience, &zt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = issue(ctx, e.caClient(t, addr, roots, tok, true), otherID)
		refused(t, err, "ztunnel on "+n1+" asks for other (on "+n2+")", codes.PermissionDenied)
	})

	t.Run("ztunnel token not bound to a pod is refused impersonation", func(t *testing.T) {
		tok, err := e.token(ctx, systemNS, "ztunnel", audience, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = issue(ctx, e.caClient(t, addr, roots, tok, true), appID)
		refused(t, err, "unbound ztunnel token", codes.PermissionDenied)
	})

	t.Run("other accounts are refused impersonation", func(t *testing.T) {
		// app runs on node 1 too, and asks for an identity that runs there.
		for _, sa := range []struct {
			ns, name string
			pod      *corev1.Pod
		}{
			{caNS, "app", &app}, {caNS, "other", nil}, {systemNS, "istiod-lite", nil},
		} {
			tok, err := e.token(ctx, sa.ns, sa.name, audience, sa.pod)
			if err != nil {
				t.Fatal(err)
			}
			target := appID
			if sa.name == "app" {
				target = identity.MustParseID("spiffe://cluster.local/ns/" + systemNS + "/sa/ztunnel")
			}
			_, err = issue(ctx, e.caClient(t, addr, roots, tok, true), target)
			refused(t, err, sa.ns+"/"+sa.name+" impersonates "+target.String(), codes.PermissionDenied)
		}
	})

	t.Run("wrong audience is refused", func(t *testing.T) {
		for _, aud := range []string{"https://kubernetes.default.svc", "not-istio-ca"} {
			tok, err := e.token(ctx, caNS, "app", aud, &app)
			if err != nil {
				t.Fatal(err)
			}
			_, err = issue(ctx, e.caClient(t, addr, roots, tok, false), appID)
			refused(t, err, "audience "+aud, codes.Unauthenticated)
		}
	})

	t.Run("every namespace has istio-ca-root-cert", func(t *testing.T) {
		if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cp-ca-late"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want, err := e.rootPEM(ctx, systemNS)
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			nss, err := e.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			missing = missing[:0]
			for _, ns := range nss.Items {
				if got, err := e.rootPEM(ctx, ns.Name); err != nil || got != want {
					missing = append(missing, ns.Name)
				}
			}
			return len(missing) == 0, nil
		})
		if err != nil {
			t.Errorf("namespaces without the root certificate: %v", missing)
		}
		// A changed copy is put back.
		cm, err := e.cs.CoreV1().ConfigMaps(caNS).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["root-cert.pem"] = "tampered"
		if _, err := e.cs.CoreV1().ConfigMaps(caNS).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := e.rootPEM(ctx, caNS)
			return err == nil && got == want, nil
		})
		if err != nil {
			t.Errorf("tampered istio-ca-root-cert in %s not restored", caNS)
		}
	})

	t.Run("restart keeps the root", func(t *testing.T) {
		before, err := e.rootPEM(ctx, systemNS)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := e.cs.CoreV1().Pods(systemNS).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=istiod-lite"}); err != nil {
			t.Fatal(err)
		}
		fresh := e.waitIstiod(t, 2)
		t.Logf("both istiod-lite pods replaced and Ready in %s", time.Since(start).Round(100*time.Millisecond))
		for _, p := range istiods {
			for _, f := range fresh {
				if p.UID == f.UID {
					t.Fatalf("pod %s was not replaced", p.Name)
				}
			}
		}
		tok, err := e.token(ctx, caNS, "app", audience, &app)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range fresh {
			c, err := issue(ctx, e.caClient(t, podAddr(p, "15012"), roots, tok, false), appID)
			if err != nil {
				t.Fatalf("new pod %s: %v", p.Name, err)
			}
			verify(t, c, appID) // same root as before the restart
		}
		after, err := e.rootPEM(ctx, systemNS)
		if err != nil || after != before {
			t.Errorf("istio-ca-root-cert changed across the restart (%v)", err)
		}
	})
}
