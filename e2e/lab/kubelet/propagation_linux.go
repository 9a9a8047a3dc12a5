package kubelet

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var sharedDirs sync.Map // dir -> struct{}: made a shared mount point

// ensureSharedMount makes dir a mount point with shared propagation so
// that bind mounts made in it later reach containers that mounted the dir
// (HostToContainer). It refuses a dir with mounts below it: binding such a
// dir on itself would hide them under copies that can then never be
// removed.
func ensureSharedMount(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	if _, ok := sharedDirs.Load(real); ok {
		return nil
	}
	isMount, shared, err := mountState(real)
	if err != nil {
		return err
	}
	if !isMount {
		if below, err := hasMountsBelow(real); err != nil || below {
			return fmt.Errorf("refusing to make %s a shared mount: it has mounts below it (%v)", real, err)
		}
	}
	if !isMount {
		if err := unix.Mount(real, real, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on itself: %w", real, err)
		}
	}
	if !shared {
		if err := unix.Mount("", real, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make %s shared: %w", real, err)
		}
	}
	sharedDirs.Store(real, struct{}{})
	return nil
}

// mountState reports whether dir is a mount point and, if so, whether
// its (top) mount has shared propagation.
func mountState(dir string) (isMount, shared bool, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false, err
	}
	defer func() { _ = f.Close() }() // read-only
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || unescapeMountPath(fields[4]) != dir {
			continue
		}
		isMount, shared = true, false // the last entry is the top mount
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				shared = true
			}
		}
	}
	return isMount, shared, sc.Err()
}

// hasMountsBelow reports whether any mount point lies under dir.
func hasMountsBelow(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(unescapeMountPath(fields[4]), dir+"/") {
			return true, nil
		}
	}
	return false, nil
}

// setupNetnsView creates the node's shared netns view dir: every pod netns
// is also bind-mounted there, and hostPath /var/run/netns maps to it, so a
// node agent sees pod namespaces created after it started.
func (k *kubelet) setupNetnsView() error {
	if err := os.MkdirAll(k.netnsView, 0o755); err != nil {
		return fmt.Errorf("create netns view dir: %w", err)
	}
	return ensureSharedMount(k.netnsView)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// releaseSharedMount undoes ensureSharedMount for a dir kubelet-lite owns.
func releaseSharedMount(dir string) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		if isMount, _, _ := mountState(real); isMount {
			_ = unix.Unmount(real, unix.MNT_DETACH) // best effort, like the rest of teardown
		}
		sharedDirs.Delete(real)
	}
}
