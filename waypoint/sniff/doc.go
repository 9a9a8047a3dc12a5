// Package sniff decides the application protocol of a connection from its
// first bytes, as Envoy's HTTP inspector does for Istio: an HTTP/1.x request
// line or the HTTP/2 connection preface means HTTP; anything else is opaque
// TCP. It also hands the bytes it read back to whoever serves the
// connection next.
package sniff
