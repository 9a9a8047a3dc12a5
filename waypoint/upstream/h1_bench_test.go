package upstream

import (
	"net/http"
	"testing"
)

// BenchmarkH1RoundTrip runs small GETs through H1 on one kept-alive
// loopback connection, each response read to its end.
//
//	go test -run='^$' -bench=H1RoundTrip -benchmem ./waypoint/upstream
func BenchmarkH1RoundTrip(b *testing.B) {
	s := newScriptServer(b, func(*http.Request, int) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	h := newTestH1(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := send(b, h, "GET", s.addr, "", nil); err != nil {
			b.Fatal(err)
		}
	}
}
