package fault

import (
	"math/rand/v2"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Rand returns a uniformly distributed float64 in [0, 1). Decide calls it
// at most twice per decision. A nil Rand means the process-wide source of
// math/rand/v2, which is safe for concurrent use; an injected Rand must be
// safe for concurrent use if Decide is called concurrently with it.
type Rand func() float64

// Decide draws the fault for one request. delay is f's delay for
// delay_percent of requests and 0 otherwise; abortStatus is f's
// abort_status for abort_percent of requests and 0 (no abort) otherwise.
// The two draws are independent, so a request may be both delayed and
// aborted: the proxy waits first, then aborts, as Envoy does.
//
// A nil f, a non-positive percentage, a non-positive delay or an abort
// status outside 200-599 injects nothing for that part; percentages above
// 100 count as 100. Decide is safe for concurrent use when rnd is.
func Decide(f *l7api.FaultInjection, rnd Rand) (delay time.Duration, abortStatus int) {
	if f == nil {
		return 0, 0
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	if d := f.GetDelay().AsDuration(); d > 0 && hit(f.GetDelayPercent(), rnd) {
		delay = d
	}
	if s := f.GetAbortStatus(); s >= 200 && s <= 599 && hit(f.GetAbortPercent(), rnd) {
		abortStatus = int(s)
	}
	return delay, abortStatus
}

// hit reports whether one draw falls within percent (0-100). It draws
// only when the outcome is not already certain.
func hit(percent float64, rnd Rand) bool {
	switch {
	case !(percent > 0): // also catches NaN
		return false
	case percent >= 100:
		return true
	}
	return rnd()*100 < percent
}
