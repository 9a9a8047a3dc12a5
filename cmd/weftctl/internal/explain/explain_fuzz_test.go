package explain

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

// explicitPort matches a destination ending in ":<digits>" that is not a
// bare IPv6 address.
var explicitPort = regexp.MustCompile(`^[^:]*:([0-9]+)$|^\[.*\]:([0-9]+)$`)

// FuzzExplain runs `weftctl explain FROM TO` with arbitrary arguments
// against a recorded ztunnel dump. An unresolvable source is an error
// that says it is the source; a destination port is 1-65535 or an error
// saying so; an explanation has at least one endpoint, each with a known
// path and a reason, keeps the explicit port, and renders as text and
// JSON.
func FuzzExplain(f *testing.F) {
	b, err := os.ReadFile("../zdump/testdata/config_dump.json")
	if err != nil {
		f.Fatal(err)
	}
	d, err := zdump.Parse(b)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{"demo/client-7d9f", "echo.demo:80"},
		{"batch-0.legacy", "10.244.1.6:8080"},
		{"legacy/old-0", "demo/echo-1:8080"},
		{"demo/client-7d9f", "demo/echo-2:8080"},
		{"demo/client-7d9f", "10.244.2.9:5432"},
		{"demo/echo-1", "client-7d9f.demo:9090"},
		{"10.244.1.5", "echo.demo.svc.cluster.local"},
		{"demo/client-7d9f", "echo.demo:0"},
		{"demo/client-7d9f", "[fd00::1]:80"},
		{"demo/client-7d9f", "fd00::1"},
		{"demo/client-7d9f", "echo.demo:http"},
		{"demo/client-7d9f", "echo.demo:"},
		{"client-7d9f", "echo.demo"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	paths := []string{PathDirect, PathWaypoint, PathPassthrough, PathUnenrolled}
	f.Fuzz(func(t *testing.T, from, to string) {
		r, err := Explain(d, from, to)
		if _, serr := findWorkload(d, from); serr != nil {
			if err == nil || !strings.HasPrefix(err.Error(), "source: ") {
				t.Fatalf("unknown source %q: err %v", from, err)
			}
			return
		}
		var port string
		if m := explicitPort.FindStringSubmatch(to); m != nil {
			port = m[1] + m[2]
		}
		if port != "" {
			if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
				// Refused: for "name:port" saying why; a bracketed
				// non-address is no destination at all.
				if err == nil || strings.Count(to, ":") == 1 && !strings.Contains(err.Error(), "1-65535") {
					t.Fatalf("destination %q: port %q accepted (err %v)", to, port, err)
				}
				return
			}
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if r.To != to || len(r.Endpoints) == 0 {
			t.Fatalf("result for %q: to %q, %d endpoints", to, r.To, len(r.Endpoints))
		}
		for _, ep := range r.Endpoints {
			if !slices.Contains(paths, ep.Path) || ep.Reason == "" || ep.Evaluated == "" {
				t.Fatalf("endpoint %+v: unknown path or no reason", ep)
			}
			if n, _ := strconv.ParseUint(port, 10, 16); r.Service == "" && port != "" && uint64(ep.Port) != n {
				t.Fatalf("endpoint port %d, asked for %s", ep.Port, port)
			}
		}
		var buf bytes.Buffer
		if err := WriteText(&buf, r); err != nil || buf.Len() == 0 {
			t.Fatalf("render: %v (%d bytes)", err, buf.Len())
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("json: %v", err)
		}
	})
}
