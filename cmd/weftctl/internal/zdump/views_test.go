package zdump

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
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

func loadFixture(t *testing.T) *Dump {
	t.Helper()
	b, err := os.ReadFile("testdata/config_dump.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestViewsGolden(t *testing.T) {
	d := loadFixture(t)
	views := map[string]func(f Filter) (printer.TableData, any){
		"workloads": func(f Filter) (printer.TableData, any) { return Workloads(d, f) },
		"services":  func(f Filter) (printer.TableData, any) { return Services(d, f) },
		"policies":  func(f Filter) (printer.TableData, any) { return Policies(d, f) },
		"certificates": func(f Filter) (printer.TableData, any) {
			return Certificates(d, FixtureNow)
		},
		"connections": func(f Filter) (printer.TableData, any) { return Connections(d, f) },
	}
	filters := map[string]Filter{
		"all":       {},
		"ns-legacy": {Namespace: "legacy"},
		"addr":      {Address: "10.244.1.6"},
		"node-b":    {Node: "node-b"},
		"vip":       {Address: "10.96.0.21"},
	}
	for view, fn := range views {
		for fname, f := range filters {
			if (view == "certificates" && fname != "all") || (fname == "node-b" && view != "workloads") || (fname == "vip" && view != "services") {
				continue
			}
			for _, format := range []printer.Format{printer.Table, printer.Wide, printer.JSON} {
				if format != printer.Table && fname != "all" {
					continue
				}
				name := view + "-" + fname + "." + string(format)
				t.Run(name, func(t *testing.T) {
					tab, obj := fn(f)
					var buf bytes.Buffer
					if err := printer.Write(&buf, format, tab, obj); err != nil {
						t.Fatal(err)
					}
					golden(t, name, buf.Bytes())
				})
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not json":         "<html>",
		"bad workload":     `{"workloads":[{"uid":5}]}`,
		"bad policy rules": `{"policies":[{"rules":"x"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(body)); err == nil {
				t.Fatal("Parse succeeded")
			}
		})
	}
	d, err := Parse([]byte(`{"workloads":[],"future":{"x":1}}`))
	if err != nil || len(d.Workloads) != 0 {
		t.Fatalf("unknown keys: %v %v", d, err)
	}
}
