package kube

import "k8s.io/client-go/tools/cache"

// GatewayInformer is the shared Gateway informer, or nil when the Gateway
// API is not served. Its objects are slimmed by Transform (no status
// conditions, listeners with name, port and protocol only). Handlers
// added before Run see every Gateway; Run starts and stops it.
func (w *Watcher) GatewayInformer() cache.SharedIndexInformer {
	if w.gateway == nil {
		return nil
	}
	return w.gateway.Gateway().V1().Gateways().Informer()
}
