//go:build linux

package node

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseSmaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []mapping
	}{
		{
			name: "code, read-only data and data of an executable",
			in: `00400000-00c6a000 r-xp 00000000 fe:00 1234 /usr/local/bin/ztunnel
Size:               8616 kB
Rss:                8420 kB
Anonymous:             0 kB
00c6a000-016c7000 r--p 0086a000 fe:00 1234 /usr/local/bin/ztunnel
Anonymous:             0 kB
016c7000-01752000 rw-p 012c7000 fe:00 1234 /usr/local/bin/ztunnel
Anonymous:           144 kB
`,
			want: []mapping{
				{start: 0x400000, end: 0xc6a000, readOnlyPrivate: true, dev: unix.Mkdev(0xfe, 0), ino: 1234},
				{start: 0xc6a000, end: 0x16c7000, readOnlyPrivate: true, dev: unix.Mkdev(0xfe, 0), ino: 1234},
				{start: 0x16c7000, end: 0x1752000, dev: unix.Mkdev(0xfe, 0), ino: 1234, anonKiB: 144},
			},
		},
		{
			name: "relocated read-only segment keeps its anonymous pages",
			in: `7f00a000-7f00b000 r--p 00001000 08:01 99 /lib/x.so
Anonymous:             4 kB
`,
			want: []mapping{{start: 0x7f00a000, end: 0x7f00b000, readOnlyPrivate: true, dev: unix.Mkdev(8, 1), ino: 99, anonKiB: 4}},
		},
		{
			name: "shared mapping, anonymous mapping, no Anonymous line",
			in: `10000-20000 r--s 00000000 00:05 7 /dev/shm/x
20000-30000 rw-p 00000000 00:00 0
`,
			want: []mapping{
				{start: 0x10000, end: 0x20000, dev: unix.Mkdev(0, 5), ino: 7, anonKiB: -1},
				{start: 0x20000, end: 0x30000, anonKiB: -1},
			},
		},
		{
			name: "garbage is skipped",
			in:   "zz-yy r-xp 0 fe:00 1\nnot a line\n30000-20000 r-xp 0 fe:00 1\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseSmaps([]byte(tc.in))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(mapping{})); diff != "" {
				t.Errorf("parseSmaps (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReleaseStartupPages releases the test binary's own start-up pages:
// something is released and the process runs on (its code faults back).
func TestReleaseStartupPages(t *testing.T) {
	n, err := releaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Errorf("released %d bytes, want the executable's read-only segments", n)
	}
	if _, err := releaseStartupPages(); err != nil {
		t.Errorf("second release: %v", err)
	}
}
