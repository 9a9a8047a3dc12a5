// Package version reports the version every Weft binary was built as. The
// Makefile stamps Version and Commit through -ldflags -X.
package version
