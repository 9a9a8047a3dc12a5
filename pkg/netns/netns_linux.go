//go:build linux

package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Open opens the network namespace at path (for example /proc/<pid>/ns/net
// or /run/netns/<name>).
func Open(path string) (*NetNS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	if err := checkNetNS(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return &NetNS{path: path, file: f}, nil
}

// Current opens the network namespace of the calling goroutine's thread.
// Goroutines that never used Do are always in the process's namespace.
func Current() (*NetNS, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := openThreadNetNS()
	if err != nil {
		return nil, err
	}
	return &NetNS{path: f.Name(), file: f}, nil
}

// New creates a new, empty network namespace (its loopback is down) and
// returns a handle on it. The namespace lives until the handle and every
// other reference to it are gone. The caller's thread is not moved.
func New() (*NetNS, error) {
	type result struct {
		ns  *NetNS
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := openThreadNetNS()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer func() { _ = orig.Close() }()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("unshare netns: %w", err)}
			return
		}
		created, openErr := openThreadNetNS()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			if created != nil {
				_ = created.Close()
			}
			ch <- result{err: fmt.Errorf("switch back to original netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		if openErr != nil {
			ch <- result{err: openErr}
			return
		}
		ch <- result{ns: &NetNS{path: "anonymous", file: created}}
	}()
	r := <-ch
	return r.ns, r.err
}

// NamedDir is where NewNamed pins namespaces, as `ip netns add` does.
const NamedDir = "/run/netns"

// NewNamed creates a new network namespace pinned at NamedDir/name, visible
// to `ip netns exec name`, and returns a handle on it. Remove it with
// RemoveNamed.
func NewNamed(name string) (*NetNS, error) {
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return nil, fmt.Errorf("netns name %q: must be a plain file name", name)
	}
	if err := os.MkdirAll(NamedDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", NamedDir, err)
	}
	path := filepath.Join(NamedDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return nil, fmt.Errorf("create netns pin %s: %w", path, err)
	}
	_ = f.Close()
	n, err := New()
	if err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	src := fmt.Sprintf("/proc/self/fd/%d", n.Fd())
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		_ = n.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("pin netns at %s: %w", path, err)
	}
	n.path = path
	return n, nil
}

// RemoveNamed unpins the namespace NamedDir/name. The namespace itself goes
// away once no handle or process refers to it. Removing a name that does
// not exist is not an error.
func RemoveNamed(name string) error {
	if name == "" || filepath.Base(name) != name {
		return fmt.Errorf("netns name %q: must be a plain file name", name)
	}
	path := filepath.Join(NamedDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns pin %s: %w", path, err)
	}
	return nil
}

// Do runs fn on a locked OS thread inside the namespace and switches the
// thread back afterwards. fn runs on a different goroutine than the caller;
// a panic in fn is re-raised in the caller. fn must not start goroutines that
// expect to be in the namespace: only the calling thread is moved. If the
// thread cannot be switched back it is never unlocked, so the runtime
// discards it.
func (n *NetNS) Do(fn func() error) error {
	f := n.File()
	if f == nil {
		return errors.New("netns do: namespace handle is closed")
	}
	type result struct {
		err      error
		panicked bool
		panicVal any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := openThreadNetNS()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer func() { _ = orig.Close() }()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter netns %s: %w", n.path, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r = result{panicked: true, panicVal: p}
				}
			}()
			r.err = fn()
		}()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and dies with this goroutine.
			if r.err == nil && !r.panicked {
				r.err = fmt.Errorf("leave netns %s: %w", n.path, err)
			}
			ch <- r
			return
		}
		runtime.UnlockOSThread()
		ch <- r
	}()
	r := <-ch
	runtime.KeepAlive(f)
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// SameAs reports whether n and other refer to the same namespace.
func (n *NetNS) SameAs(other *NetNS) (bool, error) {
	a, b := n.File(), other.File()
	if a == nil || b == nil {
		return false, errors.New("netns compare: namespace handle is closed")
	}
	var sa, sb unix.Stat_t
	if err := unix.Fstat(int(a.Fd()), &sa); err != nil {
		return false, fmt.Errorf("stat netns %s: %w", n.path, err)
	}
	if err := unix.Fstat(int(b.Fd()), &sb); err != nil {
		return false, fmt.Errorf("stat netns %s: %w", other.path, err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// Inode returns the namespace's inode number, the identity `ip netns
// identify` and /proc/<pid>/ns/net links show (net:[inode]).
func (n *NetNS) Inode() (uint64, error) {
	f := n.File()
	if f == nil {
		return 0, errors.New("netns inode: namespace handle is closed")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat netns %s: %w", n.path, err)
	}
	return st.Ino, nil
}

// LoopbackUp sets the namespace's loopback interface up, as the CNI
// loopback plugin would. It is idempotent.
func (n *NetNS) LoopbackUp() error {
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("loopback up: socket: %w", err)
		}
		defer func() { _ = unix.Close(fd) }()
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("loopback up: get flags: %w", err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("loopback up: set flags: %w", err)
		}
		return nil
	})
}

// openThreadNetNS opens the namespace of the current thread; the caller
// must hold the OS thread locked.
func openThreadNetNS() (*os.File, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open thread netns: %w", err)
	}
	return f, nil
}

// checkNetNS verifies that f is a network namespace file.
func checkNetNS(f *os.File) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("statfs %s: %w", f.Name(), err)
	}
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("%s is not a namespace file (filesystem type %#x)", f.Name(), st.Type)
	}
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("namespace type of %s: %w", f.Name(), err)
	}
	if typ != unix.CLONE_NEWNET {
		return fmt.Errorf("%s is not a network namespace (type %#x)", f.Name(), typ)
	}
	return nil
}
