package udp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// udpPacket builds an IPv4 packet carrying one UDP datagram from src to
// dst, with the UDP checksum; the kernel fills the IP total length, id and
// header checksum of a raw (IP_HDRINCL) send.
func udpPacket(src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return nil, fmt.Errorf("udp packet %s -> %s: ipv4 only", src, dst)
	}
	const ipLen, udpLen = 20, 8
	n := ipLen + udpLen + len(payload)
	if n > 0xffff {
		return nil, fmt.Errorf("udp packet of %d bytes: too large", n)
	}
	b := make([]byte, n)
	b[0] = 0x45 // version 4, 5-word header
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	b[8] = 64 // ttl
	b[9] = 17 // udp
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	u := b[ipLen:]
	binary.BigEndian.PutUint16(u[0:2], src.Port())
	binary.BigEndian.PutUint16(u[2:4], dst.Port())
	binary.BigEndian.PutUint16(u[4:6], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	binary.BigEndian.PutUint16(u[6:8], udpChecksum(s4, d4, u))
	return b, nil
}

// udpChecksum is the UDP checksum of segment u (checksum field zero) with
// the IPv4 pseudo header; 0 is sent as 0xffff (RFC 768).
func udpChecksum(src, dst [4]byte, u []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += 17 + uint32(len(u))
	add(u)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}
