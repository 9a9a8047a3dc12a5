package ca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/weftmesh/weft/pkg/identity"
)

// servingCert is istiod-lite's own serving certificate, issued by the CA
// for the configured DNS names and renewed at half-life on demand.
type servingCert struct {
	s *Server

	mu   sync.Mutex
	cert *tls.Certificate
}

// get returns the current serving certificate, issuing a new one when there
// is none or the current one is past half-life.
func (sc *servingCert) get() (*tls.Certificate, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	now := sc.s.cfg.Now()
	if sc.cert != nil {
		l := sc.cert.Leaf
		if now.Before(l.NotBefore.Add(l.NotAfter.Sub(l.NotBefore) / 2)) {
			return sc.cert, nil
		}
	}
	key, err := identity.GenerateKey()
	if err != nil {
		return nil, err
	}
	chain, err := sc.s.authority.sign(leafRequest{pub: key.Public(), dnsNames: sc.s.cfg.ServingDNSNames, validity: sc.s.cfg.DefaultValidity}, now)
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, cert := range chain[:len(chain)-1] { // the root is not sent
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	sc.cert = c
	sc.s.log.Info("issued serving certificate", "dns_names", sc.s.cfg.ServingDNSNames, "not_after", chain[0].NotAfter)
	return c, nil
}

// ServerTLSConfig returns the TLS config for istiod-lite's port 15012 (CA
// and xDS): the serving certificate is issued by this CA for
// Config.ServingDNSNames and renewed without a restart. Client certificates
// are optional; when one is sent it must chain to this CA's root, and the
// xDS server may read the verified peer from the connection state.
func (s *Server) ServerTLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.authority.root)
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2"},
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.serving.get() },
	}
}
