package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// loadEvery is how often a run samples the machine's load average.
const loadEvery = 30 * time.Second

// Machine are the facts of the machine a report was taken on.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMB  int    `json:"memory_mb"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Commit    string `json:"commit"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// Load1 is the 1-minute load average sampled every loadEvery during
	// the run (the machine is shared: other builds show here).
	Load1 []float64 `json:"loadavg_1m_samples,omitempty"`
	Nginx string    `json:"nginx,omitempty"`
}

// machineFacts reads what it can; missing facts stay empty.
func machineFacts(root string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadavg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb = atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
		m.MemoryMB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		// The binaries are built from the working tree, which may differ.
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += " (working tree with uncommitted changes)"
		}
	}
	if out, err := exec.Command("/usr/sbin/nginx", "-v").CombinedOutput(); err == nil {
		m.Nginx = strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
	}
	return m
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// sampleLoad appends the 1-minute load average to *out now and every
// interval until ctx ends; the channel it returns closes once it has
// stopped, and only then may *out be read.
func sampleLoad(ctx context.Context, every time.Duration, out *[]float64) <-chan struct{} {
	done := make(chan struct{})
	go func() { // owned by the caller: stopped with ctx, waited for on done
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if f := strings.Fields(loadavg()); len(f) > 0 {
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					*out = append(*out, v)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
