package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weftmesh/weft/pkg/identity"
)

func newServer(t *testing.T, fc *fakeCluster) *Server {
	t.Helper()
	s, err := New(context.Background(), Config{}, fc.kube)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSelfSignedRootIsKept(t *testing.T) {
	fc := newFakeCluster()
	first := newServer(t, fc)
	second := newServer(t, fc) // a restart or a second replica
	if !first.Root().Equal(second.Root()) {
		t.Fatal("second CA created a different root")
	}
	sec, err := fc.kube.CoreV1().Secrets("istio-system").Get(context.Background(), SelfSignedSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data[keyRootCert]) != string(first.RootPEM()) {
		t.Fatal("istio-ca-secret root-cert.pem differs from the root in use")
	}
	if r := first.Root(); !r.IsCA || r.NotAfter.Sub(r.NotBefore) < 9*365*24*time.Hour {
		t.Fatalf("root IsCA=%v lifetime %v", r.IsCA, r.NotAfter.Sub(r.NotBefore))
	}
}

// TestSelfSignedRootCreateRace makes another replica win the race to
// create istio-ca-secret between our Get and Create: we must adopt its root.
func TestSelfSignedRootCreateRace(t *testing.T) {
	fc := newFakeCluster()
	winner := newFakeCluster()
	winnerSrv := newServer(t, winner)
	winnerSecret, err := winner.kube.CoreV1().Secrets("istio-system").Get(context.Background(), SelfSignedSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raced := false
	fc.kube.PrependReactor("create", "secrets", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		if err := fc.kube.Tracker().Add(winnerSecret.DeepCopy()); err != nil {
			t.Errorf("add winner secret: %v", err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, SelfSignedSecretName)
	})
	loser := newServer(t, fc)
	if !raced {
		t.Fatal("create was not attempted")
	}
	if !loser.Root().Equal(winnerSrv.Root()) {
		t.Fatal("the replica that lost the race did not adopt the winner's root")
	}
}

// makeCA returns a CA certificate and key signed by parent (self-signed
// when parent is nil).
func makeCA(t *testing.T, name string, parent *x509.Certificate, parentKey any) (*x509.Certificate, []byte, []byte) {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	signer, signKey := tmpl, any(key)
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := identity.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, identity.EncodeCertificate(cert), keyPEM
}

func TestPluginCA(t *testing.T) {
	root, rootPEM, rootKeyPEM := makeCA(t, "corp root", nil, nil)
	rootKey, err := identity.ParseKey(rootKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	inter, interPEM, interKeyPEM := makeCA(t, "mesh intermediate", root, rootKey)
	plug := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PluginSecretName, Namespace: "istio-system"},
		Data: map[string][]byte{
			keyCACert: interPEM, keyCAKey: interKeyPEM, keyRootCert: rootPEM,
			keyCertChain: append(append([]byte(nil), interPEM...), rootPEM...),
		},
	}
	fc := newFakeCluster(plug)
	s := newServer(t, fc)
	if !s.Root().Equal(root) {
		t.Fatal("plug-in root not used")
	}
	if _, err := fc.kube.CoreV1().Secrets("istio-system").Get(context.Background(), SelfSignedSecretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("self-signed secret created despite cacerts: %v", err)
	}
	key, _ := identity.GenerateKey()
	chain, err := s.authority.sign(leafRequest{pub: key.Public(), uri: identity.MustParseID("spiffe://cluster.local/ns/a/sa/b").URL(), validity: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 3 || !chain[1].Equal(inter) || !chain[2].Equal(root) {
		t.Fatalf("chain of %d certificates, want leaf, intermediate, root", len(chain))
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := identity.VerifyChain(chain, identity.VerifyOptions{Roots: pool, TrustDomain: "cluster.local"}); err != nil {
		t.Fatalf("leaf from plug-in CA does not verify: %v", err)
	}

	// A broken plug-in Secret is an error, not a silent fallback.
	bad := plug.DeepCopy()
	bad.Data[keyCAKey] = rootKeyPEM // key of another certificate
	_, err = New(context.Background(), Config{}, newFakeCluster(bad).kube)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("New with mismatched plug-in key = %v", err)
	}
}

func TestRootConfigMapPublished(t *testing.T) {
	fc := newFakeCluster()
	ca := startCA(t, fc, nil)
	ctx := context.Background()
	root := string(ca.srv.RootPEM())
	check := func(ns string) func() error {
		return func() error {
			cm, err := fc.kube.CoreV1().ConfigMaps(ns).Get(ctx, RootConfigMapName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data[RootConfigMapKey] != root {
				return errNotYet
			}
			return nil
		}
	}
	for _, ns := range []string{"istio-system", "demo", "other"} {
		waitFor(t, "root configmap in "+ns, check(ns))
	}
	// A new namespace gets it.
	if _, err := fc.kube.CoreV1().Namespaces().Create(ctx, ns("fresh"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "root configmap in a new namespace", check("fresh"))
	// An edit is repaired.
	cm, err := fc.kube.CoreV1().ConfigMaps("demo").Get(ctx, RootConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[RootConfigMapKey] = "tampered"
	if _, err := fc.kube.CoreV1().ConfigMaps("demo").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edited root configmap repaired", check("demo"))
	// A deletion is repaired.
	if err := fc.kube.CoreV1().ConfigMaps("other").Delete(ctx, RootConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted root configmap recreated", check("other"))
}

func TestServingCertificate(t *testing.T) {
	fc := newFakeCluster()
	s := newServer(t, fc)
	c, err := s.serving.get()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local", "istiod.istio-system", "istiod"}
	if strings.Join(c.Leaf.DNSNames, ",") != strings.Join(want, ",") || len(c.Leaf.URIs) != 0 {
		t.Fatalf("serving cert DNS %v URIs %v", c.Leaf.DNSNames, c.Leaf.URIs)
	}
	again, _ := s.serving.get()
	if again != c {
		t.Fatal("serving certificate reissued before half-life")
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Root())
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "istiod.istio-system.svc"}); err != nil {
		t.Fatalf("serving certificate does not verify: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{TrustDomain: "Bad Domain"},
		{DefaultValidity: 48 * time.Hour, MaxValidity: time.Hour},
		{ZtunnelServiceAccounts: []string{"ztunnel"}},
	} {
		if _, err := New(context.Background(), cfg, newFakeCluster().kube); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}
