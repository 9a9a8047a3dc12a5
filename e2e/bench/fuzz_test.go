package bench

import (
	"math"
	"testing"
)

// FuzzParseBenchLine feeds arbitrary go test output to the BenchmarkScale
// parser and the row builder: no panics, no NaN in a row that has values.
func FuzzParseBenchLine(f *testing.F) {
	f.Add("BenchmarkScale-2 \t 1\t 9583641174 ns/op\t 78.88 rss-MB\t 3.360 x-less-rss-than-istiod\n")
	f.Add("BenchmarkScale\nBenchmarkScale-2 1 NaN rss-MB 0 x-less-rss-than-istiod")
	f.Add("")
	f.Fuzz(func(t *testing.T, out string) {
		m := parseBenchLine(out, "BenchmarkScale")
		for _, r := range scaleRows(5000, m) {
			if len(r.Subject.Values) > 0 && math.IsNaN(r.Subject.Median) {
				t.Fatalf("row %+v has values but a NaN median", r)
			}
		}
	})
}
