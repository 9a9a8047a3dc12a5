package server

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Memory limit settings for Config.MemoryLimit.
const (
	// MinMemoryLimit is the smallest soft limit accepted: below it
	// istiod-lite would do little but collect garbage.
	MinMemoryLimit int64 = 16 << 20
	// MemoryLimitAuto derives the soft limit from the container's memory
	// limit (MemoryLimitShare of it); without a container limit there is
	// none.
	MemoryLimitAuto int64 = 0
	// MemoryLimitOff sets no soft limit.
	MemoryLimitOff int64 = -1
	// MemoryLimitShare is the share of the container limit that
	// MemoryLimitAuto gives the Go runtime, leaving room for memory the
	// runtime does not count (thread stacks outside Go, the binary).
	MemoryLimitShare = 0.9
)

// ParseMemoryLimit parses a --memory-limit value: "auto", "off", or a size
// in bytes with an optional Kubernetes suffix ("200Mi", "1Gi", "500M").
func ParseMemoryLimit(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return MemoryLimitAuto, nil
	case "off", "none":
		return MemoryLimitOff, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("memory limit %q: want auto, off or a size such as 200Mi", s)
	}
	v, ok := q.AsInt64()
	if !ok || v <= 0 {
		return 0, fmt.Errorf("memory limit %q: want a positive size such as 200Mi", s)
	}
	return v, nil
}

// FormatMemoryLimit is the inverse of ParseMemoryLimit.
func FormatMemoryLimit(v int64) string {
	switch {
	case v == MemoryLimitAuto:
		return "auto"
	case v < 0:
		return "off"
	}
	return resource.NewQuantity(v, resource.BinarySI).String()
}

// cgroupMemoryFiles hold the container memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// containerMemoryLimit reads the memory limit of the process's cgroup;
// ok is false when there is none ("max", or v1's huge sentinel) or it
// cannot be read.
func containerMemoryLimit(files []string) (limit int64, ok bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 || v >= math.MaxInt64/2 || v > 1<<50 { // v1 reports "no limit" as a huge number
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// startupGCPercent is the garbage collector's target until the initial
// sync is done: the start-up allocates much that dies at once (decoded
// objects), and collecting it less often makes the start faster.
const startupGCPercent = 100

// tuneGC applies the start-up garbage collector settings: startupGCPercent
// (or GCPercent if higher) unless GOGC is set, and the soft memory limit
// unless GOMEMLIMIT is set (the runtime has applied those itself). It
// returns the soft limit in force, or math.MaxInt64 for none. settleGC
// switches to the steady-state target.
func tuneGC(cfg Config, log *slog.Logger) int64 {
	if _, set := os.LookupEnv("GOGC"); !set && cfg.GCPercent > 0 {
		debug.SetGCPercent(max(cfg.GCPercent, startupGCPercent))
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return debug.SetMemoryLimit(-1) // only reads it
	}
	limit, source := cfg.MemoryLimit, "flag"
	if limit == MemoryLimitAuto {
		c, ok := containerMemoryLimit(cgroupMemoryFiles)
		if !ok {
			return debug.SetMemoryLimit(-1)
		}
		limit, source = int64(float64(c)*MemoryLimitShare), "container"
	}
	if limit < 0 {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(limit)
	log.Info("soft memory limit", "bytes", limit, "source", source)
	return limit
}

// settleGC ends the start-up: it sets the steady-state target GCPercent
// (unless GOGC is set) and returns the start-up's garbage to the operating
// system at once rather than over minutes, so the resident size reflects
// what istiod-lite holds. Call it once, when the initial sync is done; it
// costs one full collection.
func settleGC(cfg Config) {
	if _, set := os.LookupEnv("GOGC"); !set && cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	debug.FreeOSMemory()
}

// returnMemory collects and returns free memory to the operating system;
// the xDS server calls it once a burst of full-state pushes (clients
// connecting together) is over, when their buffers have become garbage.
func returnMemory() { debug.FreeOSMemory() }
