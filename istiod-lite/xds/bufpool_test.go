package xds

import "testing"

// countingPool records what reaches the pool behind boundedPool.
type countingPool struct{ gets, puts int }

func (c *countingPool) Get(n int) *[]byte { c.gets++; b := make([]byte, n); return &b }
func (c *countingPool) Put(*[]byte)       { c.puts++ }

func TestBoundedPool(t *testing.T) {
	next := &countingPool{}
	p := boundedPool{next: next}
	small := p.Get(1024)
	if len(*small) != 1024 || next.gets != 1 {
		t.Fatalf("small Get: len %d, pooled gets %d", len(*small), next.gets)
	}
	p.Put(small)
	large := p.Get(2 << 20)
	if len(*large) != 2<<20 || next.gets != 1 {
		t.Fatalf("large Get: len %d, pooled gets %d", len(*large), next.gets)
	}
	p.Put(large)
	if next.puts != 1 {
		t.Errorf("pooled puts = %d, want 1 (the large buffer is dropped)", next.puts)
	}
}
