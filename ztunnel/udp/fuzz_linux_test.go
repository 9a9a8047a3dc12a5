//go:build linux

package udp

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// origDstMsg builds an IP_ORIGDSTADDR control message for a.
func origDstMsg(a netip.AddrPort) []byte {
	data := make([]byte, unix.SizeofSockaddrInet4)
	binary.LittleEndian.PutUint16(data[0:2], unix.AF_INET)
	binary.BigEndian.PutUint16(data[2:4], a.Port())
	ip := a.Addr().As4()
	copy(data[4:8], ip[:])
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_ORIGDSTADDR
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestParseOrigDst(t *testing.T) {
	want := netip.MustParseAddrPort("10.1.2.3:5353")
	got, err := parseOrigDst(origDstMsg(want))
	if err != nil || got != want {
		t.Fatalf("parseOrigDst = %s, %v; want %s", got, err, want)
	}
	if _, err := parseOrigDst(nil); err == nil {
		t.Error("no control message: want an error")
	}
}

// FuzzParseOrigDst: arbitrary control-message bytes never panic, and a
// parsed address is IPv4.
func FuzzParseOrigDst(f *testing.F) {
	f.Add(origDstMsg(netip.MustParseAddrPort("10.1.2.3:5353")))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseOrigDst(b)
		if err == nil && !a.Addr().Is4() {
			t.Fatalf("parsed %s from %x", a, b)
		}
	})
}
