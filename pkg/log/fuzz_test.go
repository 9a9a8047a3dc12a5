package log

import (
	"strings"
	"testing"
)

// FuzzSetLevel feeds the admin endpoints' /logging?level=[component:]level
// input: a level ParseLevel rejects changes nothing; one it accepts is
// what Levels then reports for the component, and reads back the same.
func FuzzSetLevel(f *testing.F) {
	for _, s := range []string{"", "debug", "INFO", "warning", "Error", "trace", "proxy:debug", ":warn", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		root, err := New(Options{Level: "info"})
		if err != nil {
			t.Fatal(err)
		}
		comp, level, ok := strings.Cut(spec, ":")
		if !ok {
			comp, level = "", spec
		}
		before := root.Levels()
		if err := root.SetLevel(comp, level); err != nil {
			if got := root.Levels(); len(got) != len(before) || got[""] != before[""] {
				t.Fatalf("rejected %q but levels changed: %v -> %v", spec, before, got)
			}
			return
		}
		want, err := ParseLevel(level)
		if err != nil {
			t.Fatalf("SetLevel accepted %q that ParseLevel rejects: %v", level, err)
		}
		name := root.Levels()[comp]
		got, err := ParseLevel(name)
		if err != nil || got != want {
			t.Fatalf("level of %q reads back %q (%v, %v), want %v", comp, name, got, err, want)
		}
	})
}
