//go:build tools

// Package coredns pins the CoreDNS release the lab runs as cluster DNS. It is
// its own module so CoreDNS keeps the client-go it was released with.
package coredns

import _ "github.com/coredns/coredns"
