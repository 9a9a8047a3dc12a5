package proxy

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzForwardedFor: the Forwarded header a waypoint sends decides the
// source address the application sees, so its parse must be exact. For
// any header: an address found is valid, unmapped and stated in a for=
// pair; only the first for= pair counts (what a client appends after it
// cannot change the answer; a for= pair put in front of it always wins);
// and parsing is deterministic.
func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{
		`for="10.0.0.1:4321"`,
		`for="10.0.0.1:4321";host=echo.ns.svc`,
		`for="[fd00::1]:80"`,
		`for=10.0.0.9`,
		`host=x;for="10.0.0.2:1", for="10.0.0.3:1"`,
		`for=_hidden, for=10.0.0.4`,
		`FOR=::ffff:10.0.0.5`,
		`for="[::ffff:10.0.0.6]"`,
		`for=unknown;by=10.0.0.7`,
		`for = 10.0.0.8`,
		``,
	} {
		f.Add(s, "10.9.9.9")
	}
	f.Fuzz(func(t *testing.T, h, extra string) {
		got, ok := forwardedFor(h)
		again, ok2 := forwardedFor(h)
		if got != again || ok != ok2 {
			t.Fatalf("forwardedFor(%q) not deterministic: %v,%v then %v,%v", h, got, ok, again, ok2)
		}
		if ok {
			if !got.IsValid() || got.Is4In6() {
				t.Fatalf("forwardedFor(%q) = %v: not a plain address", h, got)
			}
			if !strings.Contains(strings.ToLower(h), "for=") {
				t.Fatalf("forwardedFor(%q) = %v without a for= pair", h, got)
			}
		} else if got.IsValid() {
			t.Fatalf("forwardedFor(%q) = %v with ok false", h, got)
		}
		// A for= pair appended in a later element never changes the
		// answer once the header had a for= pair of its own.
		if hasForPair(h) {
			g2, ok2 := forwardedFor(h + ", for=" + extra)
			if g2 != got || ok2 != ok {
				t.Fatalf("appending for=%q changed %q from %v,%v to %v,%v", extra, h, got, ok, g2, ok2)
			}
		}
		// A for= pair put in front always wins.
		if a, err := netip.ParseAddr(extra); err == nil && a.Zone() == "" {
			g3, ok3 := forwardedFor(`for="` + bracket(a) + `:1", ` + h)
			if !ok3 || g3 != a.Unmap() {
				t.Fatalf("prefixing for=%v to %q gave %v,%v", a, h, g3, ok3)
			}
		}
	})
}

// hasForPair reports whether h has a pair forwardedFor treats as for=.
func hasForPair(h string) bool {
	for _, elem := range strings.Split(h, ",") {
		for _, pair := range strings.Split(elem, ";") {
			if k, _, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "for") {
				return true
			}
		}
	}
	return false
}

func bracket(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}
