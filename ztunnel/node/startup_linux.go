//go:build linux

package node

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// releaseStartupPages drops this process's page-table entries for its own
// executable's read-only segments (code, read-only data, function tables)
// and returns the bytes of the ranges released.
//
// Start-up runs every linked package's init code and reads its tables once
// (protobuf descriptors, regexps, crypto tables), and the kernel maps the
// 64 KiB around each page faulted, so a started process holds nearly all of
// its executable resident though it runs a part of it afterwards; those
// pages count in its resident memory until memory pressure reclaims them.
// The pages stay in the page cache: whatever runs later (the garbage
// collector included) maps its pages again on first use, with a minor fault
// and no I/O. Only private mappings of the executable without a single
// anonymous (written, copied-on-write) page are released, so a relocated
// read-only segment of a position-independent build is never reverted to
// the file's contents.
func releaseStartupPages() (int64, error) {
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		return 0, fmt.Errorf("stat own executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("read own mappings: %w", err)
	}
	var released int64
	for _, m := range parseSmaps(smaps) {
		if !m.readOnlyPrivate || m.ino != exe.Ino || m.dev != uint64(exe.Dev) || m.anonKiB != 0 {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); e != 0 {
			return released, fmt.Errorf("release executable pages %#x-%#x: %w", m.start, m.end, e)
		}
		released += int64(m.end - m.start)
	}
	return released, nil
}

// mapping is one entry of an smaps file.
type mapping struct {
	start, end      uint64
	readOnlyPrivate bool
	dev, ino        uint64
	anonKiB         int64 // -1 when smaps did not say
}

// parseSmaps reads the mappings of an smaps file: each header line
// ("start-end perms offset major:minor inode [path]") and its Anonymous
// field. Lines it does not understand are skipped.
func parseSmaps(b []byte) []mapping {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4 {
			lo, hi, _ := strings.Cut(f[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			ino, err3 := strconv.ParseUint(f[4], 10, 64)
			dev, ok := parseDev(f[3])
			if err1 != nil || err2 != nil || err3 != nil || !ok || end <= start {
				continue
			}
			out = append(out, mapping{start: start, end: end, dev: dev, ino: ino, anonKiB: -1,
				readOnlyPrivate: f[1][0] == 'r' && f[1][1] == '-' && f[1][3] == 'p'})
			continue
		}
		if len(f) == 3 && f[0] == "Anonymous:" && len(out) > 0 {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[len(out)-1].anonKiB = v
			}
		}
	}
	return out
}

// parseDev turns smaps' "major:minor" (hex) into a device number as
// stat(2) reports it.
func parseDev(s string) (uint64, bool) {
	maj, mnr, ok := strings.Cut(s, ":")
	if !ok {
		return 0, false
	}
	a, err1 := strconv.ParseUint(maj, 16, 32)
	b, err2 := strconv.ParseUint(mnr, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return unix.Mkdev(uint32(a), uint32(b)), true
}
