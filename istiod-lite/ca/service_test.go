package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/caclient"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

// rawClient dials the test CA with TLS verification of its serving
// certificate for istiod.istio-system.svc.
func rawClient(t testing.TB, ca *testCA) pb.IstioCertificateServiceClient {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{RootCAs: ca.roots, ServerName: "istiod.istio-system.svc", MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(ca.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewIstioCertificateServiceClient(conn)
}

func mustCSR(t testing.TB, id string) []byte {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := identity.NewCSR(key, identity.MustParseID(id))
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func csrWith(t testing.TB, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return identitytest.PEMBlock("CERTIFICATE REQUEST", der)
}

func TestCreateCertificate(t *testing.T) {
	fc := newFakeCluster()
	ca := startCA(t, fc, func(c *Config) { c.ClusterID = "Kubernetes" })
	client := rawClient(t, ca)

	const (
		app   = "spiffe://cluster.local/ns/demo/sa/app"
		db    = "spiffe://cluster.local/ns/demo/sa/db"
		batch = "spiffe://cluster.local/ns/demo/sa/batch"
		zt    = "spiffe://cluster.local/ns/istio-system/sa/ztunnel"
	)
	p256, _ := identity.GenerateKey()
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	appURL, _ := url.Parse(app)

	tests := []struct {
		name        string
		token       string // "" sends no authorization
		clusterID   string
		impersonate string
		csr         []byte
		validity    int64
		wantCode    codes.Code
		wantMsg     string
		wantID      string
		wantTTL     time.Duration
	}{
		{name: "own identity", token: "tok-app", csr: mustCSR(t, app), wantID: app, wantTTL: 24 * time.Hour},
		{name: "own identity, requested validity", token: "tok-app", csr: mustCSR(t, app), validity: 3600, wantID: app, wantTTL: time.Hour},
		{name: "validity above max is capped", token: "tok-app", csr: mustCSR(t, app), validity: 1000 * 3600, wantID: app, wantTTL: 48 * time.Hour},
		{name: "own identity named as impersonated", token: "tok-app", impersonate: app, csr: mustCSR(t, app), wantID: app, wantTTL: 24 * time.Hour},
		{name: "matching clusterid", token: "tok-app", clusterID: "Kubernetes", csr: mustCSR(t, app), wantID: app, wantTTL: 24 * time.Hour},
		{name: "ztunnel for pod on its node", token: "tok-ztunnel-a", impersonate: app, csr: mustCSR(t, app), wantID: app, wantTTL: 24 * time.Hour},
		{name: "ztunnel own identity", token: "tok-ztunnel-a", csr: mustCSR(t, zt), wantID: zt, wantTTL: 24 * time.Hour},

		{name: "no token", csr: mustCSR(t, app), wantCode: codes.Unauthenticated, wantMsg: "no authorization metadata"},
		{name: "not a bearer token", token: "-basic", csr: mustCSR(t, app), wantCode: codes.Unauthenticated, wantMsg: "not \"Bearer <token>\""},
		{name: "unknown token", token: "tok-nobody", csr: mustCSR(t, app), wantCode: codes.Unauthenticated, wantMsg: "invalid bearer token"},
		{name: "wrong audience", token: "tok-app-k8s", csr: mustCSR(t, app), wantCode: codes.Unauthenticated, wantMsg: "audiences"},
		{name: "not a service account", token: "tok-user", csr: mustCSR(t, app), wantCode: codes.Unauthenticated, wantMsg: "not a service account"},
		{name: "other clusterid", token: "tok-app", clusterID: "east", csr: mustCSR(t, app), wantCode: codes.Unauthenticated, wantMsg: "clusterid"},
		{name: "csr for another identity", token: "tok-app", csr: mustCSR(t, db), wantCode: codes.PermissionDenied, wantMsg: "may only get " + app},
		{name: "ztunnel for pod on another node", token: "tok-ztunnel-a", impersonate: db, csr: mustCSR(t, db), wantCode: codes.PermissionDenied, wantMsg: "no running pod with service account demo/db on node node-a"},
		{name: "ztunnel for finished pod", token: "tok-ztunnel-a", impersonate: batch, csr: mustCSR(t, batch), wantCode: codes.PermissionDenied, wantMsg: "no running pod"},
		{name: "ztunnel token not bound to a node", token: "tok-ztunnel-x", impersonate: app, csr: mustCSR(t, app), wantCode: codes.PermissionDenied, wantMsg: "not bound to a pod on a node"},
		{name: "non-ztunnel impersonation", token: "tok-app", impersonate: db, csr: mustCSR(t, db), wantCode: codes.PermissionDenied, wantMsg: "may not impersonate"},
		{name: "ztunnel impersonates but csr differs", token: "tok-ztunnel-a", impersonate: app, csr: mustCSR(t, zt), wantCode: codes.PermissionDenied, wantMsg: "csr asks for " + zt},
		{name: "bad impersonated identity", token: "tok-ztunnel-a", impersonate: "spiffe://cluster.local/ns/demo", csr: mustCSR(t, app), wantCode: codes.InvalidArgument, wantMsg: "ImpersonatedIdentity"},
		{name: "impersonated identity in another trust domain", token: "tok-ztunnel-a", impersonate: "spiffe://evil.example/ns/demo/sa/app", csr: mustCSR(t, app), wantCode: codes.InvalidArgument, wantMsg: "unknown trust domain"},
		{name: "csr in unknown trust domain", token: "tok-app", csr: mustCSR(t, "spiffe://evil.example/ns/demo/sa/app"), wantCode: codes.InvalidArgument, wantMsg: "unknown trust domain \"evil.example\""},
		{name: "malformed csr", token: "tok-app", csr: []byte("not a csr"), wantCode: codes.InvalidArgument, wantMsg: "invalid csr: no PEM block"},
		{name: "csr with extra dns san", token: "tok-app", csr: csrWith(t, p256, &x509.CertificateRequest{URIs: []*url.URL{appURL}, DNSNames: []string{"x.example"}}), wantCode: codes.InvalidArgument, wantMsg: "DNS/IP/e-mail SANs"},
		{name: "csr with two uris", token: "tok-app", csr: csrWith(t, p256, &x509.CertificateRequest{URIs: []*url.URL{appURL, appURL}}), wantCode: codes.InvalidArgument, wantMsg: "2 URI SANs"},
		{name: "csr with weak key", token: "tok-app", csr: csrWith(t, p224, &x509.CertificateRequest{URIs: []*url.URL{appURL}}), wantCode: codes.InvalidArgument, wantMsg: "P-224 not allowed"},
		{name: "negative validity", token: "tok-app", csr: mustCSR(t, app), validity: -5, wantCode: codes.InvalidArgument, wantMsg: "validity_duration -5 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			md := metadata.MD{}
			switch {
			case tt.token == "-basic":
				md.Set("authorization", "Basic abc")
			case tt.token != "":
				md.Set("authorization", "Bearer "+tt.token)
			}
			if tt.clusterID != "" {
				md.Set("clusterid", tt.clusterID)
			}
			req := &pb.IstioCertificateRequest{Csr: string(tt.csr), ValidityDuration: tt.validity}
			if tt.impersonate != "" {
				req.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{ImpersonatedIdentityKey: structpb.NewStringValue(tt.impersonate)}}
			}
			resp, err := client.CreateCertificate(metadata.NewOutgoingContext(ctx, md), req)
			if tt.wantCode != codes.OK {
				st := status.Convert(err)
				if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
					t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateCertificate: %v", err)
			}
			chain, err := identity.ParseCertificates([]byte(strings.Join(resp.CertChain, "")))
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 2 || !chain[1].Equal(ca.srv.Root()) {
				t.Fatalf("chain has %d certificates, want leaf and root", len(chain))
			}
			id, err := identity.VerifyChain(chain[:1], identity.VerifyOptions{Roots: ca.roots, TrustDomain: "cluster.local", Expected: []identity.ID{identity.MustParseID(tt.wantID)}})
			if err != nil {
				t.Fatalf("issued chain does not verify: %v", err)
			}
			leaf := chain[0]
			if leaf.Subject.CommonName != "" || len(leaf.DNSNames) != 0 || len(leaf.URIs) != 1 {
				t.Fatalf("leaf for %s has CN %q DNS %v URIs %v", id, leaf.Subject.CommonName, leaf.DNSNames, leaf.URIs)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore) - clockSkew; got < tt.wantTTL-2*time.Second || got > tt.wantTTL+time.Second {
				t.Fatalf("validity %v, want %v", got, tt.wantTTL)
			}
		})
	}

	if got := metricValue(t, ca, "weft_ca_certificates_issued_total", ""); got != 7 {
		t.Errorf("issued metric %v, want 7", got)
	}
	if got := metricValue(t, ca, "weft_ca_certificate_failures_total", reasonImpersonation); got != 5 {
		t.Errorf("impersonation failures metric %v, want 5", got)
	}
	if got := metricValue(t, ca, "weft_ca_certificate_failures_total", string(identity.CSRWeakKey)); got != 1 {
		t.Errorf("weak key failures metric %v, want 1", got)
	}
	if got := metricValue(t, ca, "weft_ca_signing_duration_seconds", ""); got != 7 {
		t.Errorf("latency histogram count %v, want 7", got)
	}
}

func TestTokenReviewErrorsAndCache(t *testing.T) {
	fc := newFakeCluster()
	ca := startCA(t, fc, nil)
	client := rawClient(t, ca)
	call := func() error {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok-app")
		_, err := client.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: string(mustCSR(t, "spiffe://cluster.local/ns/demo/sa/app"))})
		return err
	}
	fc.mu.Lock()
	fc.fail = errors.New("apiserver down")
	fc.mu.Unlock()
	if st := status.Convert(call()); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "apiserver down") {
		t.Fatalf("with TokenReview failing: %v", st)
	}
	fc.mu.Lock()
	fc.fail = nil
	fc.mu.Unlock()
	before := fc.reviews.Load()
	for range 3 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if n := fc.reviews.Load() - before; n != 1 {
		t.Fatalf("%d token reviews for 3 requests with one token, want 1 (cached)", n)
	}
	// Rejections are cached too (briefly).
	before = fc.reviews.Load()
	for range 3 {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok-nobody")
		_, err := client.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: string(mustCSR(t, "spiffe://cluster.local/ns/demo/sa/app"))})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("bad token: %v", err)
		}
	}
	if n := fc.reviews.Load() - before; n != 1 {
		t.Fatalf("%d token reviews for 3 requests with one bad token, want 1 (cached)", n)
	}
}

// TestWithCertManager runs the client side end to end: the certificate
// manager with the CA client as its fetcher, as ztunnel runs them.
func TestWithCertManager(t *testing.T) {
	fc := newFakeCluster()
	ca := startCA(t, fc, nil)
	cl, err := caclient.New(caclient.Config{
		Address:     ca.addr,
		ServerName:  "istiod.istio-system.svc",
		RootCAs:     ca.roots,
		Token:       func() (string, error) { return "tok-ztunnel-a", nil },
		ClusterID:   "Kubernetes",
		Impersonate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	m, err := certmgr.New(certmgr.Config{Fetcher: cl})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	app := identity.MustParseID("spiffe://cluster.local/ns/demo/sa/app")
	m.Track(app)
	c, err := m.Get(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != app || len(c.Roots) != 1 || !c.Roots[0].Equal(ca.srv.Root()) {
		t.Fatalf("got %s with %d roots", c.ID, len(c.Roots))
	}

	// A pod on another node: refused, and the manager reports why.
	db := identity.MustParseID("spiffe://cluster.local/ns/demo/sa/db")
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := m.Get(short, db); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("Get(db) = %v, want a PermissionDenied fetch error", err)
	}
}

// metricValue sums a counter (or a histogram's sample count) over the
// series whose labels include the value label ("" = all series).
func metricValue(t testing.TB, ca *testCA, name, label string) float64 {
	t.Helper()
	families, err := ca.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					match = true
				}
			}
			if !match {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
