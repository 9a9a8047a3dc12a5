package hbone3

import (
	"net/netip"
	"testing"
)

// FuzzUDPPath: parsing a CONNECT-UDP path never panics, and every target
// it accepts round-trips through udpPath.
func FuzzUDPPath(f *testing.F) {
	for _, s := range []string{
		"/.well-known/masque/udp/10.0.0.1/53/",
		"/.well-known/masque/udp/2001%3Adb8%3A%3A1/443/",
		"/.well-known/masque/udp/example.com/53/",
		"/.well-known/masque/udp/10.0.0.1/0/",
		"/.well-known/masque/udp/10.0.0.1/53",
		"/.well-known/masque/udp//53/",
		"/other",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		target, err := parseUDPPath(p)
		if err != nil {
			return
		}
		if !target.IsValid() || target.Port() == 0 {
			t.Fatalf("accepted invalid target %v from %q", target, p)
		}
		again, err := parseUDPPath(udpPath(target))
		if err != nil || again != target {
			t.Fatalf("round trip of %v: %v, %v", target, again, err)
		}
	})
}

func TestUDPPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want string // "" = error
	}{
		{"/.well-known/masque/udp/10.0.0.1/53/", "10.0.0.1:53"},
		{"/.well-known/masque/udp/2001%3Adb8%3A%3A1/443/", "[2001:db8::1]:443"},
		{"/.well-known/masque/udp/example.com/53/", ""},
		{"/.well-known/masque/udp/10.0.0.1/0/", ""},
		{"/.well-known/masque/udp/10.0.0.1/70000/", ""},
		{"/.well-known/masque/udp/10.0.0.1/53", ""},
		{"/.well-known/masque/udp/10.0.0.1/53/x/", ""},
		{"/masque/10.0.0.1/53/", ""},
	} {
		got, err := parseUDPPath(tc.path)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: accepted as %v", tc.path, got)
			}
			continue
		}
		if err != nil || got != netip.MustParseAddrPort(tc.want) {
			t.Errorf("%q: %v, %v; want %s", tc.path, got, err, tc.want)
		}
	}
}
