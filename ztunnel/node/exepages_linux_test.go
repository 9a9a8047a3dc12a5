package node

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// exeResidentKiB is how much of the test binary's read-only mappings is
// resident in this process, from /proc/self/smaps.
func exeResidentKiB(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	total, inExe := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			inExe = len(fields) >= 6 && strings.Join(fields[5:], " ") == exe && !strings.Contains(fields[1], "w")
			continue
		}
		if inExe && len(fields) == 3 && fields[0] == "Rss:" {
			kib, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			total += kib
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestReleaseExePages releases this test binary's own start-up pages: the
// resident part of its read-only mappings shrinks, and the program keeps
// running the code it needs (it is mapped again on use), also after a
// second release.
func TestReleaseExePages(t *testing.T) {
	before := exeResidentKiB(t)
	n, err := releaseExePages()
	if err != nil {
		t.Fatal(err)
	}
	after := exeResidentKiB(t)
	t.Logf("released %d KiB of mappings: the executable's resident pages went from %d to %d KiB", n>>10, before, after)
	if n == 0 || before == 0 {
		t.Fatalf("released %d bytes with %d KiB resident before: found no mapping of the executable", n, before)
	}
	if after >= before/2 {
		t.Errorf("resident pages of the executable: %d KiB after the release, want under half of the %d KiB before", after, before)
	}
	// Code not run since the release, on the pages just dropped.
	if err := Defaults().Validate(); err == nil || !strings.Contains(err.Error(), "node-name") {
		t.Errorf("Validate after the release: %v, want the missing node-name", err)
	}
	if _, err := releaseExePages(); err != nil {
		t.Fatalf("second release: %v", err)
	}
}
