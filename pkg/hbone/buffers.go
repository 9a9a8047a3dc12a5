package hbone

import "sync"

// Receive buffers come from size-classed pools so a stream holds memory only
// while it has unread data.
var bufClasses = [...]int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

var bufPools [len(bufClasses)]sync.Pool

func init() {
	for i := range bufPools {
		size := bufClasses[i]
		bufPools[i].New = func() any { b := make([]byte, size); return &b }
	}
}

// getBuf returns a pooled buffer of length n (n <= 1 MiB, else a fresh one).
func getBuf(n int) *[]byte {
	for i, c := range bufClasses {
		if n <= c {
			b := bufPools[i].Get().(*[]byte)
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n)
	return &b
}

func putBuf(b *[]byte) {
	c := cap(*b)
	for i, size := range bufClasses {
		if c == size {
			*b = (*b)[:c]
			bufPools[i].Put(b)
			return
		}
	}
}
