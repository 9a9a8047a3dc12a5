package exepages

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Release drops this process's mappings of its executable's read-only
// segments (code, read-only data, function tables) and returns how many
// bytes of mappings it released. Safe to call at any time and from any
// goroutine: a page still in use is mapped again on its next access.
func Release() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("release start-up pages: %w", err)
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("release start-up pages: %w", err)
	}
	defer func() { _ = maps.Close() }()
	ranges, err := exeRanges(maps, exe)
	if err != nil {
		return 0, fmt.Errorf("release start-up pages: read /proc/self/maps: %w", err)
	}
	n := 0
	for _, r := range ranges {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED); errno != 0 {
			return n, fmt.Errorf("release start-up pages: madvise %#x-%#x: %w", r.start, r.end, errno)
		}
		n += int(r.end - r.start)
	}
	return n, nil
}

// Resident reports how much of process pid's read-only mappings of its
// executable is resident, and how much is mapped, in KiB (from
// /proc/PID/smaps): what a release drops, and what comes back on use.
func Resident(pid int) (resident, mapped int, err error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("resident pages of %d: %w", pid, err)
	}
	smaps, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("resident pages of %d: %w", pid, err)
	}
	defer func() { _ = smaps.Close() }()
	resident, mapped, err = exeResident(smaps, exe)
	if err != nil {
		return 0, 0, fmt.Errorf("resident pages of %d: %w", pid, err)
	}
	return resident, mapped, nil
}
