package hbone

import (
	"crypto/x509"

	"golang.org/x/net/http2/hpack"
)

// PeerIdentity returns the SPIFFE URI SAN of a certificate ("" if it has
// none): the identity HBONE peers are known by.
func PeerIdentity(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			return u.String()
		}
	}
	return ""
}

func hpackField(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value}
}
