package netns

import (
	"errors"
	"os"
	"sync"
)

// ErrNotSupported is returned on systems without Linux network namespaces.
var ErrNotSupported = errors.New("network namespaces are only supported on linux")

// NetNS is an open handle on a network namespace. The handle keeps the
// namespace alive while it is open, even after every process in it has
// exited. A NetNS is safe for concurrent use; Close is idempotent.
type NetNS struct {
	path string

	mu     sync.Mutex
	file   *os.File
	closed bool
}

// FromFile wraps an already open namespace file (for example one received
// over ZDS). The NetNS takes ownership of f and closes it on Close. FromFile
// checks that f refers to a network namespace.
func FromFile(f *os.File) (*NetNS, error) {
	if f == nil {
		return nil, errors.New("netns from file: nil file")
	}
	if err := checkNetNS(f); err != nil {
		return nil, err
	}
	return &NetNS{path: f.Name(), file: f}, nil
}

// Path returns the path the namespace was opened from (for namespaces
// created by New or received as a file it is a descriptive name only).
func (n *NetNS) Path() string { return n.path }

// File returns the underlying file. It stays owned by the NetNS: do not
// close it. It returns nil after Close.
func (n *NetNS) File() *os.File {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	return n.file
}

// Fd returns the namespace file descriptor, or -1 after Close. The
// descriptor is valid only until Close.
func (n *NetNS) Fd() int {
	f := n.File()
	if f == nil {
		return -1
	}
	return int(f.Fd())
}

// Close releases the handle. It is idempotent.
func (n *NetNS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	return n.file.Close()
}

// Do runs fn inside the namespace of the handle at path, opening and closing
// the handle around the call.
func Do(path string, fn func() error) error {
	n, err := Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = n.Close() }()
	return n.Do(fn)
}
