package kubelet

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzExpandVars checks $(VAR) expansion never panics, leaves text
// without "$" alone, and expands a defined reference to its value.
func FuzzExpandVars(f *testing.F) {
	for _, s := range []string{"", "plain", "$(A)", "$$(A)", "$(A", "$", "a$(B)c$(A)", "$(A)$(A)$$"} {
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		vals := map[string]string{"A": v}
		got := expandVars(s, vals)
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("expandVars(%q) = %q, want unchanged", s, got)
		}
		if !strings.ContainsAny(v, "$()") {
			if got := expandVars("x$(A)y", vals); got != "x"+v+"y" {
				t.Fatalf("expandVars(x$(A)y) = %q", got)
			}
		}
	})
}

// FuzzTailLines checks that the tail is a suffix with at most n lines.
func FuzzTailLines(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), 2)
	f.Add([]byte(""), 0)
	f.Add([]byte("no newline"), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n > 1000 {
			n = 1000
		}
		got := tailLines(b, n)
		if !bytes.HasSuffix(b, got) {
			t.Fatalf("tailLines is not a suffix")
		}
		if n >= 0 && bytes.Count(bytes.TrimSuffix(got, []byte("\n")), []byte("\n")) > max(n-1, 0) {
			t.Fatalf("tailLines(%d) returned %d lines", n, bytes.Count(got, []byte("\n")))
		}
	})
}
