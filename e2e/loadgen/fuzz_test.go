package loadgen

import (
	"strings"
	"testing"
)

// FuzzParseRoute checks that a parsed relay route always has both ends and
// that they came from either side of the first '='.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{":17901=100.64.1.12:17911", "=", "a=", "=b", "a=b=c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(TLSOut, s)
		if err != nil {
			return
		}
		if r.Listen == "" || r.Target == "" || r.Listen+"="+r.Target != s || strings.Contains(r.Listen, "=") {
			t.Fatalf("ParseRoute(%q) = %+v", s, r)
		}
	})
}
