package version

import (
	"fmt"
	"runtime"
)

// Set at build time by the Makefile:
// -X github.com/weftmesh/weft/pkg/version.Version=v0.1.0-3-gabc1234
// -X github.com/weftmesh/weft/pkg/version.Commit=abc1234...
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version a binary prints: "v0.1.0 (abc1234, go1.26.8)".
func String() string {
	c := Commit
	if len(c) > 12 {
		c = c[:12]
	}
	return fmt.Sprintf("%s (%s, %s)", Version, c, runtime.Version())
}
