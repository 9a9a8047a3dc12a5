package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	weftns "github.com/weftmesh/weft/pkg/netns"
)

// netnsDir is where named network namespaces are pinned, as iproute2 does,
// so `ip netns` lists the lab's.
const netnsDir = weftns.NamedDir

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// startInNetns starts cmd inside the namespace at path; the child inherits
// the namespace of the thread that forks it.
func startInNetns(path string, cmd *exec.Cmd) error {
	return weftns.Do(path, cmd.Start)
}

// createNetns creates the named network namespace name and brings its
// loopback up. It fails if the name exists.
func createNetns(name string) error {
	if _, err := os.Stat(netnsPath(name)); err == nil {
		return fmt.Errorf("create netns %s: already exists (run weft-lab down)", name)
	}
	ns, err := weftns.NewNamed(name)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	defer func() { _ = ns.Close() }() // the namespace stays bound by name
	if err := ns.LoopbackUp(); err != nil {
		return fmt.Errorf("loopback up in %s: %w", name, err)
	}
	return nil
}

// netnsWithPrefix lists named namespaces called prefix+"-"+something.
func netnsWithPrefix(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// writeSysctl sets a per-namespace sysctl (e.g. "net/ipv4/ip_forward")
// inside the namespace at path.
func writeSysctl(path, key, value string) error {
	return weftns.Do(path, func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
			return fmt.Errorf("set sysctl %s: %w", key, err)
		}
		return nil
	})
}
