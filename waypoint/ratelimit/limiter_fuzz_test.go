package ratelimit

import (
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// FuzzLimiter runs fuzzed sequences of clock advances and keys against a
// per-source Limiter with few keys and checks the token-bucket contract:
// a key never gets more than max_tokens plus the refills of the time it
// has existed, a denial's retry-after is in (0, fill_interval], and the
// key set stays bounded.
func FuzzLimiter(f *testing.F) {
	f.Add(uint8(3), uint8(1), uint16(100), []byte{0, 0, 0, 0, 50, 0, 200, 1, 2, 3})
	f.Add(uint8(1), uint8(5), uint16(1), []byte{255, 255, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, maxTokens, perFill uint8, intervalMs uint16, script []byte) {
		if maxTokens == 0 || intervalMs == 0 {
			return
		}
		interval := time.Duration(intervalMs) * time.Millisecond
		clk := newFakeClock()
		const maxKeys = 4
		l, err := New(rateLimit(l7api.RateLimit_SOURCE, uint32(maxTokens), uint32(perFill), interval),
			WithClock(clk.Now), WithMaxKeys(maxKeys))
		if err != nil {
			t.Fatal(err)
		}
		// The model is exact while no key was evicted, i.e. while at most
		// maxKeys distinct keys were seen; after that only the retry-after
		// and key-set bounds are checked.
		type life struct {
			born    time.Time
			granted int64
		}
		lives := map[string]*life{}
		perFillN := int64(max(perFill, 1))
		for i := 0; i+1 < len(script); i += 2 {
			clk.Advance(time.Duration(script[i]) * time.Millisecond)
			key := string(rune('a' + script[i+1]%6))
			if lives[key] == nil {
				lives[key] = &life{born: clk.Now()}
			}
			ok, after := l.Allow(key)
			if ok {
				lf := lives[key]
				lf.granted++
				limit := int64(maxTokens) + perFillN*int64(clk.Now().Sub(lf.born)/interval)
				if len(lives) <= maxKeys && lf.granted > limit {
					t.Fatalf("key %q granted %d, limit %d", key, lf.granted, limit)
				}
			} else if after <= 0 || after > interval {
				t.Fatalf("retry-after %v outside (0, %v]", after, interval)
			}
			if l.Len() > maxKeys {
				t.Fatalf("%d keys held, bound %d", l.Len(), maxKeys)
			}
		}
	})
}
