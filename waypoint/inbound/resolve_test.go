package inbound

import (
	"strings"
	"testing"
)

func TestParseAuthority(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = error
	}{
		{"10.96.0.10:80", "10.96.0.10:80"},
		{"[fd00::1]:8080", "[fd00::1]:8080"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1:80"},
		{"10.96.0.10", ""},
		{"10.96.0.10:0", ""},
		{"echo.demo:80", ""},
		{"[fe80::1%eth0]:80", ""},
		{"", ""},
		{"10.96.0.10:99999", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAuthority(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseAuthority(%q) = %v, want error", tt.in, got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("ParseAuthority(%q) = %v, %v, want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestForwardedFor(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{`for="10.0.0.1:4321"`, "10.0.0.1:4321"},
		{`for="10.0.0.1:4321";host=echo.demo.svc.cluster.local`, "10.0.0.1:4321"},
		{`host=x;For="[fd00::1]:80"`, "[fd00::1]:80"},
		{`for=10.0.0.2`, "10.0.0.2:0"},
		{`for="[fd00::2]"`, "[fd00::2]:0"},
		{`for=unknown`, ""},
		{``, ""},
		{`proto=http`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ForwardedFor(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("ForwardedFor(%q) = %v, want none", tt.in, got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Fatalf("ForwardedFor(%q) = %v, %v, want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"10.96.0.10:80", "[fd00::1]:8080", "echo:80", "[::ffff:1.2.3.4]:1", "1.2.3.4:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := ParseAuthority(s)
		if err != nil {
			return
		}
		if !ap.IsValid() || ap.Port() == 0 || ap.Addr().Is4In6() || ap.Addr().Zone() != "" {
			t.Fatalf("ParseAuthority(%q) = %v: not a usable destination", s, ap)
		}
		// What parses round-trips.
		again, err := ParseAuthority(ap.String())
		if err != nil || again != ap {
			t.Fatalf("round trip of %v: %v, %v", ap, again, err)
		}
	})
}

func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{`for="10.0.0.1:4321";host=a`, `for=[fd00::1]`, `a=b, for="1.2.3.4:5"`, `for="`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, ok := ForwardedFor(s)
		if !ok {
			return
		}
		if !ap.Addr().IsValid() || ap.Addr().Is4In6() || ap.Addr().Zone() != "" {
			t.Fatalf("ForwardedFor(%q) = %v", s, ap)
		}
		if !strings.Contains(strings.ToLower(s), "for") {
			t.Fatalf("ForwardedFor(%q) found an address without a for= element", s)
		}
	})
}
