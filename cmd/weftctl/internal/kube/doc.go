// Package kube builds weftctl's Kubernetes clients from the user's
// kubeconfig and reaches pods' localhost-only ports (ztunnel's admin on
// 15000, istiod-lite's debug endpoints) through the API server's
// port-forward subresource over SPDY, the way kubectl port-forward does.
package kube
