package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certLifetime is long enough for any lab session and short enough that a
// leaked lab CA is worthless soon.
const certLifetime = 7 * 24 * time.Hour

// keyPair is a certificate and its EC P-256 key.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certSpec describes a leaf certificate.
type certSpec struct {
	cn     string
	orgs   []string
	dns    []string
	ips    []net.IP
	server bool
	client bool
}

func newCA(cn string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	return &keyPair{cert: cert, key: key}, nil
}

func (ca *keyPair) issue(s certSpec) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", s.cn, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", s.cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", s.cn, err)
	}
	return &keyPair{cert: cert, key: key}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func (kp *keyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.cert.Raw})
}

func (kp *keyPair) keyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(kp.key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// write stores the pair as dir/name.crt and dir/name.key and returns the paths.
func (kp *keyPair) write(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	k, err := kp.keyPEM()
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, kp.certPEM(), 0o644); err != nil {
		return "", "", fmt.Errorf("write %s: %w", certFile, err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", keyFile, err)
	}
	return certFile, keyFile, nil
}

// pki is the lab's certificate material on disk.
type pki struct {
	dir                  string
	ca                   *keyPair
	caFile, caKeyFile    string
	saKeyFile, saPubFile string
	apiCert, apiKey      string
	kubeletClientCert    string
	kubeletClientKey     string
	frontProxyCA         string
	proxyClientCert      string
	proxyClientKey       string
}

// newPKI writes the cluster CA, the API server's serving cert, its kubelet
// client cert and the service-account signing key (EC P-256) into dir.
func newPKI(dir string, p Plan) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki dir: %w", err)
	}
	ca, err := newCA("weft-lab-" + p.Name + "-ca")
	if err != nil {
		return nil, err
	}
	k := &pki{dir: dir, ca: ca}
	if k.caFile, k.caKeyFile, err = ca.write(dir, "ca"); err != nil {
		return nil, err
	}
	api, err := ca.issue(certSpec{
		cn:     "kube-apiserver",
		dns:    []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain, "localhost"},
		ips:    []net.IP{p.APIIP.AsSlice(), net.ParseIP(APIServiceIP), net.IPv4(127, 0, 0, 1)},
		server: true,
	})
	if err != nil {
		return nil, err
	}
	if k.apiCert, k.apiKey, err = api.write(dir, "apiserver"); err != nil {
		return nil, err
	}
	kc, err := ca.issue(certSpec{cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true})
	if err != nil {
		return nil, err
	}
	if k.kubeletClientCert, k.kubeletClientKey, err = kc.write(dir, "apiserver-kubelet-client"); err != nil {
		return nil, err
	}
	// The aggregation layer's front proxy has its own CA, so no cluster
	// client certificate can assert requestheader identities.
	fp, err := newCA("weft-lab-" + p.Name + "-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	if k.frontProxyCA, _, err = fp.write(dir, "front-proxy-ca"); err != nil {
		return nil, err
	}
	fpc, err := fp.issue(certSpec{cn: "front-proxy-client", client: true})
	if err != nil {
		return nil, err
	}
	if k.proxyClientCert, k.proxyClientKey, err = fpc.write(dir, "front-proxy-client"); err != nil {
		return nil, err
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	saDER, err := x509.MarshalECPrivateKey(sa)
	if err != nil {
		return nil, fmt.Errorf("marshal service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal service-account public key: %w", err)
	}
	k.saKeyFile = filepath.Join(dir, "sa.key")
	k.saPubFile = filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(k.saKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600); err != nil {
		return nil, fmt.Errorf("write service-account key: %w", err)
	}
	if err := os.WriteFile(k.saPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, fmt.Errorf("write service-account public key: %w", err)
	}
	return k, nil
}

// clientKubeconfig issues a client cert for user (CN) in orgs and writes a
// kubeconfig at path that reaches server with it.
func (k *pki) clientKubeconfig(path, server, user string, orgs []string) error {
	kp, err := k.ca.issue(certSpec{cn: user, orgs: orgs, client: true})
	if err != nil {
		return err
	}
	key, err := kp.keyPEM()
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(k.caFile)
	if err != nil {
		return fmt.Errorf("read CA: %w", err)
	}
	return writeKubeconfig(path, server, ca, kp.certPEM(), key)
}
