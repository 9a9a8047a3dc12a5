package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/pkg/identity"
)

// loadAuthority returns the CA's signing authority: from the plug-in Secret
// cacerts when it exists, else from the self-signed root in
// istio-ca-secret, creating that Secret if absent. Creation is
// create-if-absent: when another replica wins the race, its root is used,
// so every replica and every restart signs with the same root.
func loadAuthority(ctx context.Context, kube kubernetes.Interface, cfg *Config) (*authority, error) {
	secrets := kube.CoreV1().Secrets(cfg.Namespace)
	plug, err := secrets.Get(ctx, PluginSecretName, metav1.GetOptions{})
	switch {
	case err == nil:
		a, err := pluginAuthority(plug)
		if err != nil {
			return nil, fmt.Errorf("plug-in ca secret %s/%s: %w", cfg.Namespace, PluginSecretName, err)
		}
		return a, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get secret %s/%s: %w", cfg.Namespace, PluginSecretName, err)
	}

	existing, err := secrets.Get(ctx, SelfSignedSecretName, metav1.GetOptions{})
	if err == nil {
		return selfSignedAuthority(existing)
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get secret %s/%s: %w", cfg.Namespace, SelfSignedSecretName, err)
	}
	cert, key, err := newSelfSignedRoot(cfg.TrustDomain, cfg.Now(), cfg.RootValidity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := identity.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := identity.EncodeCertificate(cert)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SelfSignedSecretName, Namespace: cfg.Namespace},
		Type:       "istio.io/ca-root",
		Data: map[string][]byte{
			keyCACert:    certPEM,
			keyCAKey:     keyPEM,
			keyRootCert:  certPEM,
			keyCertChain: nil,
		},
	}
	created, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another replica created it first: use its root.
		created, err = secrets.Get(ctx, SelfSignedSecretName, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create secret %s/%s: %w", cfg.Namespace, SelfSignedSecretName, err)
	}
	return selfSignedAuthority(created)
}

func selfSignedAuthority(s *corev1.Secret) (*authority, error) {
	cert, key, err := parseCertAndKey(s.Data[keyCACert], s.Data[keyCAKey])
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	a, err := newAuthority(cert, key, []*x509.Certificate{cert}, cert, "secret "+s.Namespace+"/"+s.Name)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return a, nil
}

// pluginAuthority reads an operator-provided intermediate CA: ca-cert.pem
// signs, ca-key.pem is its key, root-cert.pem is the root, and
// cert-chain.pem (optional) is the chain from ca-cert.pem to the root.
func pluginAuthority(s *corev1.Secret) (*authority, error) {
	cert, key, err := parseCertAndKey(s.Data[keyCACert], s.Data[keyCAKey])
	if err != nil {
		return nil, err
	}
	roots, err := identity.ParseCertificates(s.Data[keyRootCert])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyRootCert, err)
	}
	root := roots[0]
	var chain []*x509.Certificate
	if len(s.Data[keyCertChain]) > 0 {
		chain, err = identity.ParseCertificates(s.Data[keyCertChain])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyCertChain, err)
		}
	} else {
		chain = []*x509.Certificate{cert}
	}
	if !chain[0].Equal(cert) {
		chain = append([]*x509.Certificate{cert}, chain...)
	}
	if !chain[len(chain)-1].Equal(root) {
		chain = append(chain, root)
	}
	return newAuthority(cert, key, chain, root, "secret "+s.Namespace+"/"+s.Name)
}

func parseCertAndKey(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil, fmt.Errorf("%s and %s are required", keyCACert, keyCAKey)
	}
	certs, err := identity.ParseCertificates(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyCACert, err)
	}
	key, err := identity.ParseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyCAKey, err)
	}
	return certs[0], key, nil
}
