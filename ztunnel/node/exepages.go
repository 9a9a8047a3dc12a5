package node

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Releasing the executable's start-up pages.
//
// A Go program runs every package's initializer before main, and each one
// sits among its package's code, so by the time ztunnel is ready it has
// touched nearly every part of its 6.5 MiB of code and 7.8 MiB of
// read-only data and function tables, and the kernel maps the 64 KiB
// around each page faulted: about 14 MiB of a ready ztunnel's resident
// memory was its executable, most of it code that ran once. Enrolling a
// pod (entering its network namespace, opening listeners, a certificate
// signing request) maps in another few megabytes the data path never runs.
// So a while after readiness and after the last enrollment
// (pagerelease.go), ztunnel drops its own mappings of the executable's
// read-only segments (madvise MADV_DONTNEED). The pages stay in the page cache; those it runs
// again are mapped again on their next use, a minor fault with no disk
// read while the page cache holds them. What stays resident is what
// ztunnel keeps using, and the rest is ordinary page cache the kernel can
// reclaim (it keeps mapped code longer). Writable segments are never
// touched: dropping them would lose the program's variables.

// exeRange is one read-only mapping of the executable.
type exeRange struct{ start, end uintptr }

// exeRanges returns the read-only, private mappings of the file at exe in
// a /proc/<pid>/maps listing.
func exeRanges(maps io.Reader, exe string) ([]exeRange, error) {
	var out []exeRange
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// address perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || strings.Join(f[5:], " ") != exe {
			continue
		}
		if perms := f[1]; len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, exeRange{uintptr(start), uintptr(end)})
	}
	return out, sc.Err()
}
