//go:build !unix

package hbone

import "io"

// sinkFor returns nil: direct delivery needs a Unix socket.
func sinkFor(io.Writer) sinkWriter { return nil }
