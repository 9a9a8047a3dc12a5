package explain

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestExplain(t *testing.T) {
	b, err := os.ReadFile("../zdump/testdata/config_dump.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := zdump.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to string
		allowed        []bool
		policy         string
	}{
		{"allowed-via-service", "demo/client-7d9f", "echo.demo:80", []bool{true}, "demo/allow-client"},
		{"denied-by-deny-policy", "batch-0.legacy", "10.244.1.6:8080", []bool{false}, "demo/deny-legacy"},
		{"denied-no-allow-match-unenrolled-source", "legacy/old-0", "demo/echo-1:8080", []bool{false}, ""},
		{"via-waypoint", "demo/client-7d9f", "demo/echo-2:8080", []bool{false}, ""},
		{"passthrough", "demo/client-7d9f", "10.244.2.9:5432", []bool{true}, ""},
		{"no-policy-applies", "demo/echo-1", "client-7d9f.demo:9090", []bool{true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Explain(d, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for _, ep := range r.Endpoints {
				got = append(got, ep.Allowed)
			}
			if diff := cmp.Diff(tc.allowed, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			if r.Endpoints[0].Policy != tc.policy {
				t.Errorf("deciding policy %q, want %q", r.Endpoints[0].Policy, tc.policy)
			}
			var buf bytes.Buffer
			if err := WriteText(&buf, r); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
			if tc.name == "allowed-via-service" {
				j, _ := json.MarshalIndent(r, "", "  ")
				golden(t, tc.name+".json", append(j, '\n'))
			}
		})
	}
}

func TestExplainErrors(t *testing.T) {
	b, _ := os.ReadFile("../zdump/testdata/config_dump.json")
	d, _ := zdump.Parse(b)
	for _, tc := range []struct{ from, to, want string }{
		{"demo/nope", "echo.demo", "source: no workload demo/nope"},
		{"client-7d9f", "echo.demo", "name it as NAMESPACE/POD"},
		{"demo/client-7d9f", "web.demo:443", "service demo/web.demo.svc.cluster.local has no endpoints"},
		{"demo/client-7d9f", "mystery.demo", "neither a workload nor a service"},
		{"demo/client-7d9f", "echo.demo:http", "must be a number"},
	} {
		if _, err := Explain(d, tc.from, tc.to); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Explain(%s, %s) = %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}
