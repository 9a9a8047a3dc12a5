package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// supervisorStopTimeout bounds an orderly shutdown by a lab's supervisor.
const supervisorStopTimeout = 60 * time.Second

// Down stops the lab called name below root and removes everything it made.
// If its supervisor is alive it is asked to stop (SIGTERM) and given time to
// stop its pods; then, alive or not, every process in the lab's namespaces
// or running from its state directory is killed and every namespace, host
// link, mount and the state directory is removed. It finds leftovers by the
// lab's prefix, so it works after a killed run. Down is idempotent.
func Down(ctx context.Context, root, name string, log *slog.Logger) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	dir := StateDir(root, name)
	if s, err := ReadState(dir); err == nil && s.SupervisorPID != os.Getpid() && supervisorAlive(s) {
		log.Info("stopping lab supervisor", "pid", s.SupervisorPID)
		_ = syscall.Kill(s.SupervisorPID, syscall.SIGTERM)
		deadline := time.Now().Add(supervisorStopTimeout)
		for supervisorAlive(s) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
		}
		if supervisorAlive(s) {
			log.Warn("lab supervisor did not stop, killing it", "pid", s.SupervisorPID)
			_ = syscall.Kill(s.SupervisorPID, syscall.SIGKILL)
		}
	}
	if err := os.Remove(SupervisorLog(root, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errors.Join(sweep(root, name, log), fmt.Errorf("remove supervisor log: %w", err))
	}
	return sweep(root, name, log)
}

// SweepDead removes every lab under root whose state says its supervisor
// has died (a killed test run or supervisor). Labs that are still running,
// and namespaces without a state dir under root, are left alone.
func SweepDead(ctx context.Context, root string, log *slog.Logger) error {
	entries, err := os.ReadDir(LabsDir(root))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list labs: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		s, err := ReadState(StateDir(root, e.Name()))
		if err != nil || supervisorAlive(s) {
			continue
		}
		log.Info("removing a lab whose supervisor died", "lab", e.Name(), "pid", s.SupervisorPID)
		if err := Down(ctx, root, e.Name(), log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Running reports whether the lab's supervisor process is still alive.
func Running(s State) bool { return supervisorAlive(s) }

// supervisorAlive reports whether the recorded supervisor still runs (and is
// not a reused pid: its start time must match the recorded one).
func supervisorAlive(s State) bool {
	if s.SupervisorPID <= 0 {
		return false
	}
	t, err := procStartTicks(s.SupervisorPID)
	return err == nil && t == s.SupervisorStart
}

// procStartTicks returns a process's start time in clock ticks since boot
// (field 22 of /proc/<pid>/stat).
func procStartTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// labNetnsInodes returns the inodes of every network namespace of lab name:
// its named ones and any pinned under its state dir.
func labNetnsInodes(dir, name string) (nsNames []string, inodes map[uint64]bool, mounts []mount, err error) {
	if nsNames, err = netnsWithPrefix(name); err != nil {
		return nil, nil, nil, err
	}
	inodes = map[uint64]bool{}
	for _, n := range nsNames {
		if ino, err := inode(netnsPath(n)); err == nil {
			inodes[ino] = true
		}
	}
	if mounts, err = labMounts(dir, name); err != nil {
		return nil, nil, nil, err
	}
	for _, m := range mounts {
		if m.fstype == "nsfs" {
			if ino, err := inode(m.point); err == nil {
				inodes[ino] = true
			}
		}
	}
	return nsNames, inodes, mounts, nil
}

// sweep removes whatever is left of lab name: processes, mounts, network
// namespaces, the host link and the state directory.
func sweep(root, name string, log *slog.Logger) error {
	dir := StateDir(root, name)
	nsNames, inodes, mounts, err := labNetnsInodes(dir, name)
	if err != nil {
		return err
	}
	if n, err := unshadowNetnsDir(); err != nil {
		log.Warn("named netns directory is shadowed; pins may stay", "err", err)
	} else if n > 0 {
		log.Info("detached a copy of the named netns directory that hid the lab's pins", "copies", n)
	}
	var errs []error
	if n := killLabProcs(dir, inodes); n > 0 {
		log.Info("killed leftover lab processes", "count", n)
	}
	// Deepest first, detached so a busy mount cannot block teardown.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].point) > len(mounts[j].point) })
	for _, m := range mounts {
		if err := unix.Unmount(m.point, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.point, err))
		}
	}
	for _, n := range nsNames {
		if err := os.Remove(netnsPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove netns %s: %w", n, err))
		}
	}
	if err := deleteHostLink(name + "-host"); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove lab state: %w", err))
	}
	return errors.Join(errs...)
}

func inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

type mount struct{ point, fstype string }

// labMounts lists mounts under the lab's state dir and its named netns.
func labMounts(dir, name string) ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only
	nsDir := netnsDir
	if real, err := filepath.EvalSymlinks(netnsDir); err == nil {
		nsDir = real
	}
	prefixes := []string{dir + "/", filepath.Join(nsDir, name) + "-", filepath.Join(netnsDir, name) + "-"}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		prefixes = append(prefixes, real+"/")
	}
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		point := unescapeMount(fields[4])
		fstype := ""
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				fstype = fields[i+1]
				break
			}
		}
		for _, p := range prefixes {
			if strings.HasPrefix(point, p) || point+"/" == p {
				out = append(out, mount{point: point, fstype: fstype})
				break
			}
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// labPIDs lists the processes (but this one) in one of the lab's network
// namespaces or whose command line names the state dir.
func labPIDs(dir string, netnsInodes map[uint64]bool) []int {
	self := os.Getpid()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if ino, err := inode(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && netnsInodes[ino] {
			pids = append(pids, pid)
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killLabProcs SIGKILLs the lab's processes (labPIDs) and waits for them to
// go. It returns how many it killed.
func killLabProcs(dir string, netnsInodes map[uint64]bool) int {
	victims := labPIDs(dir, netnsInodes)
	for _, pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range victims {
		for time.Now().Before(deadline) {
			if err := syscall.Kill(pid, 0); err != nil {
				break
			}
			// A zombie child of ours counts as gone once reaped by its
			// owner; do not wait for it forever.
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return len(victims)
}

// ResidentBytes sums the resident memory (VmRSS) of every process of lab
// name: its supervisor, control plane, kubelets, kube-proxies and pods. It
// also returns how many processes it counted.
func ResidentBytes(root, name string) (total uint64, procs int, err error) {
	dir := StateDir(root, name)
	_, inodes, _, err := labNetnsInodes(dir, name)
	if err != nil {
		return 0, 0, err
	}
	pids := labPIDs(dir, inodes)
	if s, err := ReadState(dir); err == nil && supervisorAlive(s) && s.SupervisorPID != os.Getpid() {
		pids = append(pids, s.SupervisorPID)
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(v)
				if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					total += kb * 1024
					procs++
				}
			}
		}
	}
	return total, procs, nil
}
