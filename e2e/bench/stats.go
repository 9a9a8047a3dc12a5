package bench

import (
	"math"
	"slices"
)

// median returns the median of vs (the mean of the middle two for an even
// count), NaN for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread returns max-min of vs, NaN for none.
func spread(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	return slices.Max(vs) - slices.Min(vs)
}

// ratio returns a/b, NaN when b is zero or either is NaN.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// pairwise returns f(a[i], b[i]) for each repetition both have.
func pairwise(a, b []float64, f func(x, y float64) float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, n)
	for i := range n {
		out[i] = f(a[i], b[i])
	}
	return out
}

func sub(x, y float64) float64 { return x - y }

// finite returns vs without NaNs and infinities (runs that measured nothing).
func finite(vs []float64) []float64 {
	out := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// quantile returns the q-quantile (0..1) of vs by the nearest-rank method
// (the smallest value at or above a fraction q of them), NaN for none.
func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// distBlocks is how many consecutive blocks a distribution is split into
// for its spread.
const distBlocks = 3

// distSide summarises a distribution of samples (in the order taken) at
// quantile q: Median is the quantile over all samples, Values the same
// quantile over distBlocks consecutive blocks of them, and Spread their
// max − min, so that a distribution's row carries its noise like a
// repeated measurement's does.
func distSide(name string, samples []float64, q float64) Side {
	samples = finite(samples)
	s := Side{Name: name, Median: quantile(samples, q), Spread: math.NaN()}
	if len(samples) == 0 {
		return s
	}
	n := len(samples)
	if n < distBlocks {
		s.Values, s.Spread = []float64{s.Median}, 0
		return s
	}
	for i := range distBlocks {
		s.Values = append(s.Values, quantile(samples[i*n/distBlocks:(i+1)*n/distBlocks], q))
	}
	s.Spread = spread(s.Values)
	return s
}

// distRow builds a row from two distributions at quantile q; base may be
// empty (no in-run baseline: the ratio is NaN, written as 0, and the row's
// note must say why).
func distRow(scenario, kase, metric, unit, baseName string, base []float64, subjName string, subj []float64, q float64) Row {
	r := Row{Scenario: scenario, Case: kase, Metric: metric, Unit: unit, Better: "lower",
		Baseline: distSide(baseName, base, q), Subject: distSide(subjName, subj, q)}
	r.Ratio, r.Delta = math.NaN(), math.NaN()
	if len(r.Baseline.Values) > 0 && len(r.Subject.Values) > 0 {
		if r.Baseline.Median > 0 {
			r.Ratio = r.Subject.Median / r.Baseline.Median
		}
		r.Delta = r.Subject.Median - r.Baseline.Median
	}
	r.Spread.Baseline, r.Spread.Subject = r.Baseline.Spread, r.Subject.Spread
	return r
}
