// Package exepages releases a long-running proxy's mappings of the parts of
// its own executable that only start-up ran.
//
// A Go program runs every package's initializer before main, and each one
// sits among its package's code, so by the time a proxy is ready it has
// touched nearly every part of its code (6.5 MiB in ztunnel) and read-only
// data and function tables (7.8 MiB), and the kernel maps the 64 KiB
// around each page faulted: about 14 MiB of a ready ztunnel's resident
// memory was its executable, most of it code that ran once. Work that
// comes in bursts, such as enrolling a pod (entering its network
// namespace, opening listeners, a certificate signing request) or applying
// new configuration, maps in more that the data path never runs.
//
// Release drops the process's own mappings of its executable's read-only
// segments (madvise MADV_DONTNEED). The pages stay in the page cache; those
// the process runs again are mapped again on their next use, a minor fault
// with no disk read while the page cache holds them. What stays resident
// is what the process keeps using, and the rest is ordinary page cache the
// kernel can reclaim (mapped code it protects from reclaim longer).
// Writable segments are never touched: dropping them would lose the
// program's variables. A Releaser calls Release a while after readiness
// and after the last burst of such work. A debugger's breakpoints live in
// private copies of code pages, which a release discards: debug with the
// release off (RELEASE_PAGES_AFTER=0 in ztunnel and the waypoint).
//
// Only Linux is supported; elsewhere Release does nothing.
package exepages

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// exeRange is one read-only mapping of the executable.
type exeRange struct{ start, end uintptr }

// exeMapping parses one line of /proc/<pid>/maps (or a mapping's first
// line in smaps) and reports whether it is a read-only, private mapping of
// the file at exe.
func exeMapping(line, exe string) (exeRange, bool) {
	// address perms offset dev inode path
	f := strings.Fields(line)
	if len(f) < 6 || strings.Join(f[5:], " ") != exe {
		return exeRange{}, false
	}
	if perms := f[1]; len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
		return exeRange{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return exeRange{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return exeRange{}, false
	}
	return exeRange{uintptr(start), uintptr(end)}, true
}

// exeRanges returns the read-only, private mappings of the file at exe in
// a /proc/<pid>/maps listing.
func exeRanges(maps io.Reader, exe string) ([]exeRange, error) {
	var out []exeRange
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		if r, ok := exeMapping(sc.Text(), exe); ok {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// exeResident sums the read-only, private mappings of the file at exe in
// a /proc/<pid>/smaps listing: how much of them is resident and how much
// is mapped, in KiB.
func exeResident(smaps io.Reader, exe string) (resident, mapped int, err error) {
	in := false
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		name, value, isField := strings.Cut(line, ":")
		if !isField || strings.ContainsAny(name, " -") { // a mapping's first line
			var r exeRange
			r, in = exeMapping(line, exe)
			mapped += int((r.end - r.start) >> 10)
			continue
		}
		if in && name == "Rss" {
			kib, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")))
			if err != nil {
				return 0, 0, fmt.Errorf("smaps line %q: %w", line, err)
			}
			resident += kib
		}
	}
	return resident, mapped, sc.Err()
}
