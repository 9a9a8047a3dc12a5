// Package securityapi is the generated Go code for istio.security: the
// Authorization resource that carries L4 policy to ztunnel.
package securityapi
