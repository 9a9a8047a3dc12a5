package exepages

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// exeResidentKiB is how much of the test binary's read-only mappings is
// resident in this process.
func exeResidentKiB(t *testing.T) int {
	t.Helper()
	resident, _, err := Resident(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return resident
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
