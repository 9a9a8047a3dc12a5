package exepages

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExeRanges(t *testing.T) {
	const maps = `00400000-00a8d000 r-xp 00000000 fd:00 1234                               /opt/weft/zt unnel
00a8d000-0125d000 r--p 0068d000 fd:00 1234                               /opt/weft/zt unnel
0125d000-012dd000 rw-p 00e5d000 fd:00 1234                               /opt/weft/zt unnel
012dd000-03324000 rw-p 00000000 00:00 0
3cbebdc00000-3cbebe400000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--s 00000000 fd:00 1234                       /opt/weft/zt unnel
7f0000001000-7f0000002000 r--p 00000000 fd:00 99                         /opt/weft/other
7f0000002000-7f0000003000 r--p 00000000 fd:00 1234                       /opt/weft/zt unnel (deleted)
zzzz-7f0000004000 r--p 00000000 fd:00 1234                               /opt/weft/zt unnel
7ffdb426e000-7ffdb428f000 rw-p 00000000 00:00 0                          [stack]
7ffdb4290000-7ffdb4292000 r-xp 00000000 00:00 0                          [vdso]
`
	got, err := exeRanges(strings.NewReader(maps), "/opt/weft/zt unnel")
	if err != nil {
		t.Fatal(err)
	}
	// The code and the read-only data; not the writable data, anonymous
	// memory, a shared mapping, another file or a replaced binary.
	want := []exeRange{{0x400000, 0xa8d000}, {0xa8d000, 0x125d000}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(exeRange{})); diff != "" {
		t.Errorf("exeRanges (-want +got):\n%s", diff)
	}
}

func TestExeResident(t *testing.T) {
	const smaps = `00400000-00a8d000 r-xp 00000000 fd:00 1234                               /opt/weft/zt unnel
Size:               6708 kB
Rss:                3328 kB
VmFlags: rd ex mr mw me
00a8d000-0125d000 r--p 0068d000 fd:00 1234                               /opt/weft/zt unnel
Size:               7999 kB
Rss:                6212 kB
0125d000-012dd000 rw-p 00e5d000 fd:00 1234                               /opt/weft/zt unnel
Rss:                 448 kB
3cbebdc00000-3cbebe400000 rw-p 00000000 00:00 0
Rss:                3284 kB
7f0000001000-7f0000002000 r--p 00000000 fd:00 99                         /opt/weft/other
Rss:                   4 kB
`
	resident, mapped, err := exeResident(strings.NewReader(smaps), "/opt/weft/zt unnel")
	if err != nil {
		t.Fatal(err)
	}
	// The code and the read-only data only.
	if resident != 3328+6212 || mapped != (0xa8d000-0x400000+0x125d000-0xa8d000)>>10 {
		t.Errorf("exeResident = %d resident, %d mapped KiB; want %d, %d", resident, mapped, 3328+6212, (0x125d000-0x400000)>>10)
	}
	if _, _, err := exeResident(strings.NewReader("00400000-00a8d000 r-xp 00000000 fd:00 1234 /x\nRss: many kB\n"), "/x"); err == nil {
		t.Error("a malformed Rss line: no error")
	}
}
