// Package tunnel connects ztunnel's proxy to pkg/hbone: Client opens
// outbound HBONE streams from a pooled connection dialled inside the source
// pod's netns with the pod's certificate, and Server serves a pod's 15008
// listener with that pod's certificate, handing each CONNECT to the proxy.
package tunnel
