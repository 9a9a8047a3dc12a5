package exepages

import (
	"bufio"
	"encoding/json"
	"fmt"
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

// TestRelease releases this test binary's own start-up pages: the
// resident part of its read-only mappings shrinks, and the program keeps
// running the code it needs (it is mapped again on use), also after a
// second release.
func TestRelease(t *testing.T) {
	before := exeResidentKiB(t)
	n, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := exeResidentKiB(t)
	t.Logf("released %d KiB of mappings: the executable's resident pages went from %d to %d KiB", n>>10, before, after)
	if n == 0 || before == 0 {
		t.Fatalf("released %d bytes with %d KiB resident before: found no mapping of the executable", n, before)
	}
	// Without -race about 15% stays (what the test runs in between), with
	// it about 45% (the race runtime's own code).
	if after*4 >= before*3 {
		t.Errorf("resident pages of the executable: %d KiB after the release, want under three quarters of the %d KiB before", after, before)
	}
	// Code and type tables on the pages just dropped.
	b, err := json.Marshal(struct {
		Pages []int `json:"pages"`
	}{[]int{before, after}})
	if want := fmt.Sprintf(`{"pages":[%d,%d]}`, before, after); err != nil || string(b) != want {
		t.Errorf("json.Marshal after the release = %s, %v; want %s", b, err, want)
	}
	if again, err := Release(); err != nil || again != n {
		t.Fatalf("second release: %d bytes, %v; want %d again", again, err, n)
	}
}
