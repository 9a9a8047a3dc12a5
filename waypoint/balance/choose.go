package balance

import "net/netip"

// fastTries is how many random draws Pick makes for an eligible endpoint
// before it counts the eligible ones.
const fastTries = 4

// eligible reports whether skip lets ep be picked.
func (o *options) eligible(ep netip.AddrPort) bool {
	return o.skip == nil || !o.skip(ep)
}

// chooseOne returns the index of a uniformly random eligible endpoint, or
// of any endpoint when none is eligible. len(endpoints) must be > 0.
func (o *options) chooseOne(endpoints []netip.AddrPort) int {
	n := len(endpoints)
	if n == 1 {
		return 0
	}
	for range fastTries {
		if i := o.intn(n); o.eligible(endpoints[i]) {
			return i
		}
	}
	m := o.countEligible(endpoints)
	if m == 0 {
		return o.intn(n) // panic mode: all are skipped, use all
	}
	return o.nthEligible(endpoints, o.intn(m))
}

// chooseTwo returns the indices of two distinct random eligible
// endpoints; j is -1 when only one endpoint is eligible (or exists). When
// none is eligible it chooses among all. len(endpoints) must be > 0.
func (o *options) chooseTwo(endpoints []netip.AddrPort) (i, j int) {
	n := len(endpoints)
	if n == 1 {
		return 0, -1
	}
	i, j = o.distinct(n)
	if o.eligible(endpoints[i]) && o.eligible(endpoints[j]) {
		return i, j
	}
	m := o.countEligible(endpoints)
	switch m {
	case 0:
		return i, j // panic mode: all are skipped, use all
	case 1:
		return o.nthEligible(endpoints, 0), -1
	}
	a, b := o.distinct(m)
	return o.nthEligible(endpoints, a), o.nthEligible(endpoints, b)
}

// distinct returns two distinct uniform indices in [0, n), n ≥ 2.
func (o *options) distinct(n int) (int, int) {
	i := o.intn(n)
	j := o.intn(n - 1)
	if j >= i {
		j++
	}
	return i, j
}

func (o *options) countEligible(endpoints []netip.AddrPort) int {
	m := 0
	for _, ep := range endpoints {
		if o.eligible(ep) {
			m++
		}
	}
	return m
}

// nthEligible returns the index of the k-th (0-based) eligible endpoint.
func (o *options) nthEligible(endpoints []netip.AddrPort, k int) int {
	for i, ep := range endpoints {
		if o.eligible(ep) {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return 0 // unreachable while k < countEligible
}
