//go:build !linux

package netns

// Open is not supported on this system.
func Open(path string) (*NetNS, error) { return nil, ErrNotSupported }

// Current is not supported on this system.
func Current() (*NetNS, error) { return nil, ErrNotSupported }

// New is not supported on this system.
func New() (*NetNS, error) { return nil, ErrNotSupported }

// NamedDir is where NewNamed would pin namespaces.
const NamedDir = "/run/netns"

// NewNamed is not supported on this system.
func NewNamed(name string) (*NetNS, error) { return nil, ErrNotSupported }

// RemoveNamed is not supported on this system.
func RemoveNamed(name string) error { return ErrNotSupported }

// Do is not supported on this system.
func (n *NetNS) Do(fn func() error) error { return ErrNotSupported }

// SameAs is not supported on this system.
func (n *NetNS) SameAs(other *NetNS) (bool, error) { return false, ErrNotSupported }

// Inode is not supported on this system.
func (n *NetNS) Inode() (uint64, error) { return 0, ErrNotSupported }

// LoopbackUp is not supported on this system.
func (n *NetNS) LoopbackUp() error { return ErrNotSupported }

func checkNetNS(f interface{ Name() string }) error { return ErrNotSupported }
