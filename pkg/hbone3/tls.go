package hbone3

import (
	"crypto/tls"
	"errors"

	"github.com/quic-go/quic-go/http3"
)

// ALPN is the application protocol HBONE over QUIC negotiates.
const ALPN = http3.NextProtoH3

// forQUIC adapts a mesh TLS config (identity.ServerConfig or ClientConfig,
// which offer ALPN h2 for TCP) to QUIC: the same certificates and
// verification, ALPN h3. The caller's config is not modified.
func forQUIC(c *tls.Config) (*tls.Config, error) {
	if c == nil {
		return nil, errors.New("hbone3: tls config is required")
	}
	q := c.Clone()
	q.NextProtos = []string{ALPN}
	return q, nil
}
