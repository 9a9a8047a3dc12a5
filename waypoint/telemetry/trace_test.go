package telemetry

import (
	"net/http"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	valid := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		in string
		ok bool
	}{
		{valid, true},
		{" " + valid + " ", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tc, ok := ParseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ParseTraceparent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if ok && tt.in == valid && tc.String() != valid {
				t.Errorf("String() = %q, want %q", tc.String(), valid)
			}
		})
	}
}

func TestPropagate(t *testing.T) {
	in := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h := http.Header{"Traceparent": {in}, "Tracestate": {"a=b"}, "Baggage": {"k=v"}}
	tc := Propagate(h)
	if tc.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id changed: %s", tc.TraceIDString())
	}
	out := h.Get("Traceparent")
	if out == in || out[:36] != in[:36] || h.Get("Tracestate") != "a=b" || h.Get("Baggage") != "k=v" {
		t.Errorf("continued trace: traceparent %q tracestate %q baggage %q", out, h.Get("Tracestate"), h.Get("Baggage"))
	}
	h = http.Header{"Traceparent": {"garbage"}, "Tracestate": {"a=b"}}
	Propagate(h)
	if _, ok := ParseTraceparent(h.Get("Traceparent")); !ok || h.Get("Tracestate") != "" {
		t.Errorf("new trace: traceparent %q tracestate %q", h.Get("Traceparent"), h.Get("Tracestate"))
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tc, ok := ParseTraceparent(s)
		if !ok {
			return
		}
		again, ok := ParseTraceparent(tc.String())
		if !ok || again != tc {
			t.Fatalf("%q parsed to %v, which does not round-trip", s, tc)
		}
	})
}
