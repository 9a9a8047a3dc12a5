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

// PeerIdentity returns the verified SPIFFE identity of the other end of
// the stream's connection: the server's for a stream opened by a Pool, the
// client's for a stream a Server accepted ("" when its certificate carries
// none).
func (s *Stream) PeerIdentity() string { return s.c.peerID }

func hpackField(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value}
}
