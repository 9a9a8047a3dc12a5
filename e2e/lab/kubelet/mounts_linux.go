package kubelet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountBuilder assembles a container's view in a private (slave) mount
// namespace. It never writes to host directories: when a mountpoint is
// missing, it "mirrors" the nearest existing ancestor — a tmpfs holding a
// bind mount of every entry — moved over it, and creates the mountpoint in
// that tmpfs. Mirroring "/" switches the root (move + chroot).
type mountBuilder struct {
	scratch string
	n       int
	owned   map[string]bool // directories that live in our tmpfs
}

func newMountBuilder(scratch string) (*mountBuilder, error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return nil, fmt.Errorf("make mounts private: %w", err)
	}
	if scratch == "" {
		return nil, errors.New("no scratch dir")
	}
	if err := unix.Mount("tmpfs", scratch, "tmpfs", 0, "mode=755"); err != nil {
		return nil, fmt.Errorf("mount scratch tmpfs: %w", err)
	}
	// Reach the scratch tmpfs by fd from now on: volumes may cover its path.
	fd, err := unix.Open(scratch, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open scratch: %w", err)
	}
	scratch = "/proc/self/fd/" + strconv.Itoa(fd)
	return &mountBuilder{scratch: scratch, owned: map[string]bool{scratch: true}}, nil
}

// bind mounts src at target (recursively), read-only if ro.
func (b *mountBuilder) bind(src, target string, ro bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("mount source: %w", err)
	}
	target, err = resolveExisting(filepath.Clean(target))
	if err != nil {
		return fmt.Errorf("resolve mount target: %w", err)
	}
	if err := b.ensure(target, st.IsDir()); err != nil {
		return fmt.Errorf("create mountpoint %s: %w", target, err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", src, target, err)
	}
	if ro {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", target, err)
		}
	}
	return nil
}

// resolveExisting resolves symlinks in the parent directories of p that
// exist, leaving the missing tail and the last element as written.
func resolveExisting(p string) (string, error) {
	dir, last := filepath.Dir(p), filepath.Base(p)
	if dir == p {
		return p, nil
	}
	var tail []string
	for {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			parts := append([]string{r}, tail...)
			return filepath.Join(append(parts, last)...), nil
		}
		if dir == "/" {
			return "", fmt.Errorf("cannot resolve %s", p)
		}
		tail = append([]string{filepath.Base(dir)}, tail...)
		dir = filepath.Dir(dir)
	}
}

// ensure makes target exist as a directory (dir) or file.
func (b *mountBuilder) ensure(target string, dir bool) error {
	fi, err := os.Lstat(target)
	if err == nil {
		if fi.Mode()&os.ModeSymlink != 0 {
			if st, err := os.Stat(target); err == nil && st.IsDir() == dir {
				return nil // the bind follows the link
			}
			// A dangling or mismatched link: replace it in a mirror.
			parent := filepath.Dir(target)
			if !b.owned[parent] {
				if err := b.mirror(parent); err != nil {
					return err
				}
			}
			if err := os.Remove(target); err != nil {
				return err
			}
			return b.create(target, dir)
		}
		if fi.IsDir() != dir {
			return fmt.Errorf("%s exists with another type", target)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(target)
	if err := b.ensure(parent, true); err != nil {
		return err
	}
	if !b.owned[parent] {
		if err := b.mirror(parent); err != nil {
			return err
		}
	}
	return b.create(target, dir)
}

func (b *mountBuilder) create(target string, dir bool) error {
	if dir {
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		b.owned[target] = true
		return nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// mirror replaces dir by a tmpfs that bind-mounts each of its entries.
func (b *mountBuilder) mirror(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	b.n++
	m := filepath.Join(b.scratch, "m"+strconv.Itoa(b.n))
	if err := os.Mkdir(m, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("mode=%o", st.Mode().Perm())
	if err := unix.Mount("tmpfs", m, "tmpfs", 0, opts); err != nil {
		return fmt.Errorf("mount mirror tmpfs for %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join(m, e.Name())
		if dst == m || strings.HasPrefix(src, m+"/") {
			continue
		}
		fi, err := os.Lstat(src)
		if err != nil {
			continue // raced away
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, dst); err != nil {
				return err
			}
			continue
		case fi.IsDir():
			err = os.Mkdir(dst, fi.Mode().Perm())
		default:
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			return err
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mirror %s: %w", src, err)
		}
	}
	if dir != "/" {
		if err := unix.Mount(m, dir, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move mirror over %s: %w", dir, err)
		}
		b.owned[dir] = true
		return nil
	}
	if err := os.Chdir(m); err != nil {
		return err
	}
	if err := unix.Mount(m, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move mirror over /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into mirror: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	b.owned["/"] = true
	return nil
}
