package xds

import (
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// outbox is an unbounded FIFO of requests for one stream, so that Subscribe
// and the receive loop never block on the network. It holds at most one ACK
// per response plus subscription changes, so it stays small.
type outbox struct {
	mu    sync.Mutex
	reqs  []*discoveryv3.DeltaDiscoveryRequest
	ready chan struct{} // has a token while reqs is non-empty
}

func newOutbox() *outbox { return &outbox{ready: make(chan struct{}, 1)} }

func (o *outbox) push(r *discoveryv3.DeltaDiscoveryRequest) {
	o.mu.Lock()
	o.reqs = append(o.reqs, r)
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

func (o *outbox) drain() []*discoveryv3.DeltaDiscoveryRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.reqs
	o.reqs = nil
	return r
}
