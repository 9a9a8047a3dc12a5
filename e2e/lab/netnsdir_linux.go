package lab

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	id, parent string
	point      string
	fstype     string
	shared     bool
}

func readMountInfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		m := mountEntry{id: fields[0], parent: fields[1], point: unescapeMount(fields[4])}
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				if i+1 < len(fields) {
					m.fstype = fields[i+1]
				}
				break
			}
			if strings.HasPrefix(fields[i], "shared:") {
				m.shared = true
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func realNetnsDir() string {
	if real, err := filepath.EvalSymlinks(netnsDir); err == nil {
		return real
	}
	return netnsDir
}

// prepareNetnsDir makes the named-netns directory a shared mount point of
// its own, as iproute2 does, so that a later `ip netns add` elsewhere does
// not bind a fresh copy over it and hide the lab's pins. It binds only an
// empty directory: binding over existing pins would hide them instead.
func prepareNetnsDir(log *slog.Logger) error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	dir := realNetnsDir()
	mounts, err := readMountInfo()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.point == dir {
			if m.shared {
				return nil
			}
			if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("make %s shared: %w", dir, err)
			}
			return nil
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	if len(entries) > 0 {
		log.Debug("named netns directory is not a mount point and holds pins; leaving it alone", "dir", dir)
		return nil
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", dir, err)
	}
	return nil
}

// unshadowNetnsDir detaches copies of the named-netns directory that were
// bound over it after pins were made beneath (iproute2 does this when the
// directory is not a mount point yet), as long as nothing is mounted on the
// copy: then the hidden pins become reachable again. It returns how many
// copies it detached.
func unshadowNetnsDir() (int, error) {
	dir := realNetnsDir()
	detached := 0
	for {
		mounts, err := readMountInfo()
		if err != nil {
			return detached, err
		}
		// The topmost mount on dir is the last one listed on it.
		var top *mountEntry
		hasChildren := map[string]bool{}
		pinsBelow := false
		for i := range mounts {
			m := &mounts[i]
			hasChildren[m.parent] = true
			if m.point == dir {
				top = m
			}
		}
		if top == nil || hasChildren[top.id] {
			return detached, nil
		}
		for _, m := range mounts {
			if filepath.Dir(m.point) == dir && m.fstype == "nsfs" && m.parent != top.id {
				pinsBelow = true
			}
		}
		if !pinsBelow {
			return detached, nil
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return detached, nil
			}
			return detached, fmt.Errorf("detach %s copy over hidden pins: %w", dir, err)
		}
		detached++
	}
}
