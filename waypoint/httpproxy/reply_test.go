package httpproxy

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRemoveHopByHop(t *testing.T) {
	tests := []struct {
		name     string
		in, want http.Header
	}{
		{"standard hop-by-hop headers",
			http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"5"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"}, "X-App": {"1"}},
			http.Header{"X-App": {"1"}}},
		{"headers named by Connection",
			http.Header{"Connection": {"X-Secret, close"}, "X-Secret": {"s"}, "X-App": {"1"}},
			http.Header{"X-App": {"1"}}},
		{"te: trailers kept for gRPC",
			http.Header{"Te": {"trailers"}, "Content-Type": {"application/grpc"}},
			http.Header{"Te": {"trailers"}, "Content-Type": {"application/grpc"}}},
		{"other te dropped", http.Header{"Te": {"gzip"}}, http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			removeHopByHop(h)
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		method string
		major  int
		h      http.Header
		want   bool
	}{
		{"websocket", "GET", 1, http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, true},
		{"upgrade without connection token", "GET", 1, http.Header{"Upgrade": {"websocket"}}, false},
		{"connect", "CONNECT", 1, http.Header{}, true},
		{"plain", "GET", 1, http.Header{}, false},
		{"h2 never upgrades", "GET", 2, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: tt.method, ProtoMajor: tt.major, Header: tt.h}
			if got := isUpgrade(r); got != tt.want {
				t.Errorf("isUpgrade = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewRequestIDIsAUUIDv4(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if !re.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
	}
}

// BenchmarkNewRequestID: one x-request-id, drawn without a system call.
func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = newRequestID()
	}
}
