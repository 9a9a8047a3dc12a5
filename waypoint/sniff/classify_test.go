package sniff

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		in   string
		want Protocol
	}{
		{"", Unknown},
		{"G", Unknown},
		{"GET", Unknown},
		{"GET ", Unknown},
		{"GET /", Unknown},
		{"GET / HTTP/1", Unknown},
		{"GET / HTTP/1.1\r", Unknown},
		{"GET / HTTP/1.1\r\n", HTTP1},
		{"DELETE /a?b=c HTTP/1.0\r\nHost: x\r\n", HTTP1},
		{"GET / HTTP/1.1\n", HTTP1},
		{"PRI", Unknown},
		{"PRI * HTTP/2.0\r\n", Unknown},
		{Preface, HTTP2},
		{Preface + "\x00\x00\x12\x04", HTTP2},
		{"PRI * HTTP/1.1\r\n", HTTP1},
		{"\x16\x03\x01\x02\x00", TCP},
		{"SSH-2.0-OpenSSH\r\n", TCP},
		{"GET  / HTTP/1.1\r\n", TCP},
		{"GET / HTTP/2.0\r\n", TCP},
		{"GET / FTP/1.1\r\n", TCP},
		{"GET /\x00 HTTP/1.1\r\n", TCP},
		{strings.Repeat("A", 30) + " / HTTP/1.1\r\n", TCP},
		{"GET /" + strings.Repeat("a", MaxRequestLine), HTTP1},
		{strings.Repeat("A", MaxRequestLine), TCP},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			if got := Classify([]byte(tt.in)); got != tt.want {
				t.Errorf("Classify(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		close  bool
		want   Protocol
	}{
		{"http1 in pieces", []string{"GE", "T / HT", "TP/1.1\r\nHost: a\r\n\r\n"}, false, HTTP1},
		{"h2 preface", []string{Preface[:5], Preface[5:]}, false, HTTP2},
		{"tcp", []string{"\x00\x01binary"}, false, TCP},
		{"ends early", []string{"GET /"}, true, TCP},
		{"server first (silent)", nil, false, TCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go func() {
				for _, w := range tt.writes {
					_, _ = b.Write([]byte(w))
				}
				if tt.close {
					_ = b.Close()
				}
			}()
			p, c, err := Detect(a, time.Now().Add(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if p != tt.want {
				t.Fatalf("protocol = %v, want %v", p, tt.want)
			}
			// The bytes read are replayed.
			want := strings.Join(tt.writes, "")
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("replayed %q, want %q", got, want)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\n", Preface, "PRI * HTTP/2", "\x16\x03\x01", "POST /x HTTP/1.0\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := Classify(b)
		if len(b) >= MaxRequestLine && p == Unknown {
			t.Fatalf("undecided at %d bytes", len(b))
		}
		// A decision never changes as more bytes arrive.
		for i := 1; i < len(b) && i < 64; i++ {
			if q := Classify(b[:i]); q != Unknown && q != p {
				t.Fatalf("prefix %q decided %v, whole %q decided %v", b[:i], q, b, p)
			}
		}
	})
}
