package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/identity"
)

// fuzzTokens are the tokens of the fake cluster, in the order the fuzzer's
// selector picks them; a selector past the end sends its own header.
var fuzzTokens = []string{"tok-app", "tok-ztunnel-a", "tok-ztunnel-x", "tok-app-k8s", "tok-user"}

// fuzzAllowed lists, per token, every identity the CA may sign for it:
// its own, and for ztunnel-a (bound to node-a) those of the running pods
// on node-a. Every other token may get nothing.
var fuzzAllowed = map[string][]string{
	"tok-app":       {"spiffe://cluster.local/ns/demo/sa/app"},
	"tok-ztunnel-a": {"spiffe://cluster.local/ns/istio-system/sa/ztunnel", "spiffe://cluster.local/ns/demo/sa/app"},
}

// fuzzOwn is the identity each signing-capable token gets without
// impersonation.
var fuzzOwn = map[string]string{
	"tok-app":       "spiffe://cluster.local/ns/demo/sa/app",
	"tok-ztunnel-a": "spiffe://cluster.local/ns/istio-system/sa/ztunnel",
}

// FuzzCreateCertificate drives the CA's request handling with arbitrary
// callers, CSRs (well-formed for a fuzzed URI, raw bytes, corrupted
// signatures, extra SANs, weak or foreign keys), impersonation metadata,
// cluster ids and validities. The CA never signs an identity the caller
// may not have or one the CSR did not ask for, binds the certificate to
// the CSR's key, keeps within the validity bounds, and refuses everything
// else with a client-error status that says why; a well-formed request for
// the caller's own identity is always signed.
func FuzzCreateCertificate(f *testing.F) {
	keys := fuzzKeys(f)
	f.Add(uint8(0), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(0), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/db", []byte{}, "", int64(3600), "Kubernetes")
	f.Add(uint8(1), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "spiffe://cluster.local/ns/demo/sa/app", int64(1<<40), "")
	f.Add(uint8(1), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/db", []byte{}, "spiffe://cluster.local/ns/demo/sa/db", int64(0), "")
	f.Add(uint8(1), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/batch", []byte{}, "spiffe://cluster.local/ns/demo/sa/batch", int64(0), "")
	f.Add(uint8(2), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "spiffe://cluster.local/ns/demo/sa/app", int64(0), "")
	f.Add(uint8(0), "", uint8(0), "spiffe://evil.example/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(1), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "spiffe://evil.example/ns/demo/sa/app", int64(-1), "east")
	f.Add(uint8(0), "", uint8(1), "", []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), "", int64(0), "")
	f.Add(uint8(0), "", uint8(1), "", []byte("not a csr"), "", int64(0), "")
	f.Add(uint8(0), "", uint8(2), "spiffe://cluster.local/ns/demo/sa/app", []byte{40, 7}, "", int64(0), "")
	for mut := range byte(6) {
		f.Add(uint8(0), "", uint8(3), "spiffe://cluster.local/ns/demo/sa/app", []byte{mut}, "", int64(0), "")
	}
	f.Add(uint8(9), "Bearer tok-app", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(9), "bearer   tok-app  ", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(9), "Basic tok-app", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(3), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(4), "", uint8(0), "spiffe://cluster.local/ns/demo/sa/app", []byte{}, "", int64(0), "")
	f.Add(uint8(6), "", uint8(0), "", []byte("0"), "", int64(0), "") // no token, so no own identity to expect

	fc := newFakeCluster()
	ca := startCA(f, fc, func(c *Config) { c.ClusterID = "Kubernetes" })
	s := ca.srv

	f.Fuzz(func(t *testing.T, tok uint8, header string, csrMode uint8, uri string, extra []byte, impersonate string, validity int64, clusterID string) {
		md := metadata.MD{}
		token := ""
		if int(tok) < len(fuzzTokens) {
			token = fuzzTokens[tok]
			md.Set("authorization", "Bearer "+token)
		} else if header != "" {
			md.Set("authorization", header)
			// The token the CA sees in a header of our own, by RFC 6750.
			if scheme, tk, ok := strings.Cut(header, " "); ok && strings.EqualFold(scheme, "bearer") {
				token = strings.TrimSpace(tk)
			}
		}
		if clusterID != "" {
			md.Set("clusterid", clusterID)
		}
		csr, wellFormed := fuzzCSR(t, keys, csrMode, uri, extra)
		req := &pb.IstioCertificateRequest{Csr: string(csr), ValidityDuration: validity}
		if impersonate != "" {
			req.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{ImpersonatedIdentityKey: structpb.NewStringValue(impersonate)}}
		}
		ctx, cancel := context.WithTimeout(metadata.NewIncomingContext(context.Background(), md), 10*time.Second)
		defer cancel()
		resp, _, reason, err := s.createCertificate(ctx, req)

		if err != nil {
			st := status.Convert(err)
			switch st.Code() {
			case codes.Unauthenticated, codes.InvalidArgument, codes.PermissionDenied:
			default:
				t.Fatalf("refusal with status %v (%q); want a client error", st.Code(), st.Message())
			}
			if st.Message() == "" || reason == "" {
				t.Fatalf("refusal without a message or reason: %v, reason %q", err, reason)
			}
			if resp != nil {
				t.Fatalf("refusal with a response: %v", resp)
			}
			if own, ok := fuzzOwn[token]; ok && wellFormed && uri == own && impersonate == "" && validity >= 0 &&
				(clusterID == "" || clusterID == "Kubernetes") {
				t.Fatalf("well-formed request of %s for its own identity refused: %v", token, err)
			}
			return
		}

		// Signed: check what was signed against what was asked and allowed.
		parsedCSR, csrID, perr := identity.ParseCSR(csr)
		if perr != nil {
			t.Fatalf("signed a CSR that does not parse: %v", perr)
		}
		chain := parseChain(t, resp.GetCertChain())
		leaf := chain[0]
		if len(leaf.URIs) != 1 || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
			t.Fatalf("leaf SANs: uris %v dns %v ip %v email %v", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
		}
		got := leaf.URIs[0].String()
		if got != csrID.String() {
			t.Fatalf("signed %s for a CSR asking for %s", got, csrID)
		}
		if !slices.Contains(fuzzAllowed[token], got) {
			t.Fatalf("signed %s for token %q (header %q), which may have only %v", got, token, header, fuzzAllowed[token])
		}
		if !publicKeyEqual(leaf.PublicKey, parsedCSR.PublicKey) {
			t.Fatal("leaf key is not the CSR's key")
		}
		if leaf.IsCA {
			t.Fatal("signed a CA certificate")
		}
		if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 48*time.Hour+2*clockSkew {
			t.Fatalf("leaf valid for %v, max is 48h", d)
		}
		if validity < 0 {
			t.Fatalf("signed despite negative validity %d", validity)
		}
		pool := x509.NewCertPool()
		pool.AddCert(chain[len(chain)-1])
		inter := x509.NewCertPool()
		for _, c := range chain[1 : len(chain)-1] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("issued chain does not verify: %v", err)
		}
	})
}

// fuzzKeys are the keys fuzzCSR signs with: allowed ones first.
type fuzzKeySet struct {
	p256, p384, p224 *ecdsa.PrivateKey
	rsa1024          *rsa.PrivateKey
	ed               ed25519.PrivateKey
}

func fuzzKeys(tb testing.TB) *fuzzKeySet {
	tb.Helper()
	var ks fuzzKeySet
	var err error
	if ks.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if ks.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if ks.p224, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if ks.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil { //nolint:gosec // a deliberately weak key the CA must refuse
		tb.Fatal(err)
	}
	if _, ks.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		tb.Fatal(err)
	}
	return &ks
}

// fuzzCSR builds the request's CSR. Mode 0 is a well-formed P-256 CSR for
// uri (when uri parses); 1 is extra verbatim; 2 is the mode-0 CSR with one
// DER byte changed (extra[0] picks where, extra[1] the xor); 3 is a CSR
// for uri with one defect picked by extra[0]: a DNS SAN, a second URI, an
// IP SAN, a P-224, RSA-1024 or Ed25519 key, or a P-384 key (allowed).
// wellFormed reports a mode-0 CSR.
func fuzzCSR(t *testing.T, ks *fuzzKeySet, mode uint8, uri string, extra []byte) (csr []byte, wellFormed bool) {
	u, err := url.Parse(uri)
	if err != nil || mode%4 == 1 {
		return extra, false
	}
	tmpl := &x509.CertificateRequest{URIs: []*url.URL{u}}
	var key crypto.Signer = ks.p256
	pick := byte(0)
	if len(extra) > 0 {
		pick = extra[0]
	}
	if mode%4 == 3 {
		switch pick % 7 {
		case 0:
			tmpl.DNSNames = []string{"app.demo.svc"}
		case 1:
			tmpl.URIs = append(tmpl.URIs, &url.URL{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/demo/sa/db"})
		case 2:
			tmpl.IPAddresses = append(tmpl.IPAddresses, []byte{10, 0, 0, 1})
		case 3:
			key = ks.p224
		case 4:
			key = ks.rsa1024
		case 5:
			key = ks.ed
		case 6:
			key = ks.p384
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return extra, false // a URI x509 cannot encode: send the raw bytes instead
	}
	if mode%4 == 2 && len(der) > 0 {
		i, x := int(pick)%len(der), byte(1)
		if len(extra) > 1 && extra[1] != 0 {
			x = extra[1]
		}
		der[i] ^= x
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), mode%4 == 0
}

func parseChain(t *testing.T, pems []string) []*x509.Certificate {
	t.Helper()
	if len(pems) < 2 {
		t.Fatalf("chain of %d certificates, want leaf and root at least", len(pems))
	}
	var out []*x509.Certificate
	for _, p := range pems {
		certs, err := identity.ParseCertificates([]byte(p))
		if err != nil || len(certs) != 1 {
			t.Fatalf("chain entry %q: %d certificates, %v", p, len(certs), err)
		}
		out = append(out, certs[0])
	}
	return out
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
