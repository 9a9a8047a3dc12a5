package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	old, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = old, oldC })
	Version, Commit = "v1.2.3", "0123456789abcdef"
	if got := String(); !strings.HasPrefix(got, "v1.2.3 (0123456789ab, go") {
		t.Fatalf("String() = %q", got)
	}
}
