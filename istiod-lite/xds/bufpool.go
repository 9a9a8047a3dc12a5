package xds

import (
	"google.golang.org/grpc/mem"
)

// maxPooledBuffer is the largest message buffer the gRPC servers pool.
const maxPooledBuffer = 32 << 10

// boundedPool pools small message buffers (through next) and allocates
// larger ones afresh, dropping them when gRPC gives them back. A full
// state is a message of megabytes that a connection sends once; pooled,
// every such buffer would stay in memory until two garbage collections
// pass without a Put, which at 5,000 workloads and ten clients kept about
// 16 MB alive for nothing.
type boundedPool struct {
	next mem.BufferPool
}

var _ mem.BufferPool = boundedPool{}

func (p boundedPool) Get(length int) *[]byte {
	if length <= maxPooledBuffer {
		return p.next.Get(length)
	}
	b := make([]byte, length)
	return &b
}

func (p boundedPool) Put(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		p.next.Put(b)
	}
}
