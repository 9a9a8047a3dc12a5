package layout

import (
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/weftmesh/weft"

// components may not import one another; pkg/ may import none of them.
var components = []string{"istiod-lite", "ztunnel", "waypoint", "cni"}

type pkgInfo struct {
	ImportPath string
	Dir        string
	Name       string
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Deps       []string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// goList runs `go list -json` with args in the module root, with every build
// tag that gates files of ours, so that tagged files are checked too.
func goList(t *testing.T, args ...string) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-tags=e2e", "-json"}, args...)...)
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestEveryPackageHasOneDocComment(t *testing.T) {
	for _, p := range goList(t, "./...") {
		files := append(append([]string{}, p.GoFiles...), p.CgoFiles...)
		var withDoc []string
		fset := token.NewFileSet()
		for _, f := range files {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				withDoc = append(withDoc, f)
			}
		}
		// A main package documents itself too: "Command x ...".
		if len(withDoc) != 1 {
			t.Errorf("package %s has %d package doc comments (%v); want exactly one, in doc.go or main.go", p.ImportPath, len(withDoc), withDoc)
		}
	}
}

func TestNoGrabBagPackages(t *testing.T) {
	for _, p := range goList(t, "./...") {
		switch filepath.Base(p.Dir) {
		case "util", "utils", "helpers", "helper", "common", "models", "misc":
			t.Errorf("package %s: name it for what it does, not %q", p.ImportPath, filepath.Base(p.Dir))
		}
	}
}

func componentOf(importPath string) string {
	rel := strings.TrimPrefix(importPath, module+"/")
	for _, c := range components {
		if rel == c || strings.HasPrefix(rel, c+"/") {
			return c
		}
	}
	if rel == "pkg" || strings.HasPrefix(rel, "pkg/") {
		return "pkg"
	}
	return ""
}

func TestComponentBoundaries(t *testing.T) {
	for _, p := range goList(t, "./...") {
		from := componentOf(p.ImportPath)
		if from == "" {
			continue // cmd/ and e2e/ may import anything
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := componentOf(imp)
			if to == "" && !strings.HasPrefix(imp, module+"/pkg") {
				t.Errorf("%s imports %s: only cmd/ and e2e/ may import cmd/ or e2e/ packages", p.ImportPath, imp)
				continue
			}
			if to != "pkg" && to != from {
				t.Errorf("%s (%s) imports %s (%s): move shared code to pkg/", p.ImportPath, from, imp, to)
			}
		}
	}
}

func TestCNIPluginStaysSmall(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "weft-cni")); err != nil {
		t.Skip("cmd/weft-cni does not exist yet")
	}
	for _, p := range goList(t, "-deps", "./cmd/weft-cni") {
		for _, banned := range []string{"k8s.io/client-go", "google.golang.org/grpc"} {
			if p.ImportPath == banned || strings.HasPrefix(p.ImportPath, banned+"/") {
				t.Errorf("cmd/weft-cni depends on %s; the plugin must import neither client-go nor gRPC", p.ImportPath)
			}
		}
	}
}
