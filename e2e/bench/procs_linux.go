package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// proc is a process of the lab found through /proc.
type proc struct {
	PID  int
	Node string   // NODE_NAME from its environment, if any
	Args []string // its command line
}

// findProcs lists the processes whose executable is the file at exe (the
// same file, so a lab's bind-mounted image binary matches the build
// output it came from). When netns is set, only processes in that network
// namespace count.
func findProcs(exe, netns string) ([]proc, error) {
	want, err := os.Stat(exe)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", exe, err)
	}
	var wantNS os.FileInfo
	if netns != "" {
		if wantNS, err = os.Stat(netns); err != nil {
			return nil, fmt.Errorf("stat %s: %w", netns, err)
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		st, err := os.Stat(filepath.Join(dir, "exe"))
		if err != nil || !os.SameFile(st, want) {
			continue
		}
		if wantNS != nil {
			ns, err := os.Stat(filepath.Join(dir, "ns", "net"))
			if err != nil || !os.SameFile(ns, wantNS) {
				continue
			}
		}
		p := proc{PID: pid}
		if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			p.Args = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		}
		if b, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
			for _, kv := range bytes.Split(b, []byte{0}) {
				if v, ok := bytes.CutPrefix(kv, []byte("NODE_NAME=")); ok {
					p.Node = string(v)
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// cpuSeconds returns the CPU time of pid so far: the sum of its threads'
// run time from /proc/PID/task/*/schedstat (nanoseconds), or, without
// schedstat, user+system time from /proc/PID/stat (10 ms ticks).
func cpuSeconds(pid int) (float64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err == nil {
		var ns uint64
		ok := true
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				ok = false
				break
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				ok = false
				break
			}
			v, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				ok = false
				break
			}
			ns += v
		}
		if ok {
			return float64(ns) / 1e9, nil
		}
	}
	return statCPUSeconds(pid)
}

// statCPUSeconds returns the user+system CPU time of pid from its stat.
func statCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; fields count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat of %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat of %d: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat of %d: utime %q stime %q", pid, f[11], f[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// rssMB returns the resident set size of pid in MiB.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("status of %d: VmRSS %q", pid, v)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("status of %d: no VmRSS", pid)
}

// pinProc restricts every thread of pid to cpus; threads it starts later
// inherit the mask.
func pinProc(pid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("threads of %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("pin thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}
