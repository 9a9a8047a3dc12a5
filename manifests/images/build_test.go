package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	tinyOnce sync.Once
	tinyData []byte
	tinyErr  error
)

// TestMain removes the shared build folder.
func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		_ = os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

var tinyDir string

// tinyStatic compiles a tiny static Linux program once per test binary.
func tinyStatic() ([]byte, error) {
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "weft-images-test-")
		if tinyErr != nil {
			return
		}
		files := map[string]string{
			"main.go": "package main\n\nfunc main() {}\n",
			"go.mod":  "module example.com/tiny\n\ngo 1.26\n",
		}
		for n, body := range files {
			if tinyErr = os.WriteFile(filepath.Join(tinyDir, n), []byte(body), 0o644); tinyErr != nil {
				return
			}
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "tiny", ".")
		cmd.Dir = tinyDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			tinyErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		tinyData, tinyErr = os.ReadFile(filepath.Join(tinyDir, "tiny"))
	})
	return tinyData, tinyErr
}

// buildStatic puts a tiny static program into a new folder under each of
// names and returns the folder.
func buildStatic(t *testing.T, names ...string) string {
	t.Helper()
	data, err := tinyStatic()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildLoadsBack(t *testing.T) {
	bins := buildStatic(t, "ztunnel", "istiod-lite", "weft-cni-agent", "weft-cni")
	out := t.TempDir()
	specs := []Spec{}
	for _, s := range DefaultSpecs() {
		if s.Name == "ztunnel" || s.Name == "istiod-lite" || s.Name == "weft-cni-agent" {
			s.HostTools = nil // TestHostTools covers them
			specs = append(specs, s)
		}
	}
	res, err := Build(Config{BinDir: bins, OutDir: out, Tag: "v0.1.0", Revision: "abc123", Specs: specs})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results", len(res))
	}
	tests := []struct {
		name      string
		user      string
		files     []string
		privLabel bool
	}{
		{name: "istiod-lite", user: NonRootUser, files: []string{"usr/local/bin/istiod-lite"}},
		{name: "ztunnel", user: RootUser, files: []string{"usr/local/bin/ztunnel"}, privLabel: true},
		{name: "weft-cni-agent", user: RootUser, files: []string{"usr/local/bin/weft-cni-agent", "usr/local/bin/weft-cni"}, privLabel: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := res[i]
			if want := "weft/" + tc.name + ":v0.1.0"; r.Ref != "index.docker.io/"+want && r.Ref != want {
				t.Errorf("ref %q, want %s", r.Ref, want)
			}
			if r.Arch != runtime.GOARCH {
				t.Errorf("arch %q, want %s", r.Arch, runtime.GOARCH)
			}
			tag, err := name.NewTag("weft/"+tc.name+":v0.1.0", name.WeakValidation)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(r.Path, &tag)
			if err != nil {
				t.Fatalf("load %s: %v", r.Path, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"/usr/local/bin/" + tc.name}, cf.Config.Entrypoint); diff != "" {
				t.Errorf("entrypoint (-want +got):\n%s", diff)
			}
			if cf.Config.User != tc.user {
				t.Errorf("user %q, want %q", cf.Config.User, tc.user)
			}
			if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
				t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
			}
			l := cf.Config.Labels
			if l["org.opencontainers.image.title"] != tc.name || l["org.opencontainers.image.version"] != "v0.1.0" ||
				l["org.opencontainers.image.revision"] != "abc123" || l["org.opencontainers.image.source"] != DefaultSource {
				t.Errorf("labels %v", l)
			}
			if _, ok := l["io.weftmesh.privileges"]; ok != tc.privLabel {
				t.Errorf("privileges label present=%v, want %v", ok, tc.privLabel)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 2 {
				t.Fatalf("%d layers, want base + binaries", len(layers))
			}
			base := layerFiles(t, layers[0])
			for _, f := range []string{"etc/passwd", "etc/group", "tmp/"} {
				if _, ok := base[f]; !ok {
					t.Errorf("base layer lacks %s: %v", f, base)
				}
			}
			if m := base["tmp/"]; m.mode != 0o1777 {
				t.Errorf("/tmp mode %o", m.mode)
			}
			app := layerFiles(t, layers[1])
			var got []string
			for f, h := range app {
				got = append(got, f)
				if h.mode != 0o755 || h.uid != 0 {
					t.Errorf("%s: mode %o uid %d", f, h.mode, h.uid)
				}
			}
			sort.Strings(got)
			want := append([]string(nil), tc.files...)
			sort.Strings(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("binary layer files (-want +got):\n%s", diff)
			}
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if d.String() == "" {
				t.Error("no digest")
			}
		})
	}
}

type fileInfo struct {
	mode int64
	uid  int
}

func layerFiles(t *testing.T, l v1.Layer) map[string]fileInfo {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	out := map[string]fileInfo{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = fileInfo{mode: h.Mode, uid: h.Uid}
	}
}

func TestBuildIsReproducible(t *testing.T) {
	bins := buildStatic(t, "echo")
	spec := []Spec{{Name: "echo"}}
	var digests []string
	for range 2 {
		res, err := Build(Config{BinDir: bins, OutDir: t.TempDir(), Tag: "dev", Specs: spec})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res[0].Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ: %v", digests)
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no tag", cfg: Config{BinDir: dir, OutDir: t.TempDir(), Specs: []Spec{{Name: "script"}}}},
		{name: "not ELF", cfg: Config{BinDir: dir, OutDir: t.TempDir(), Tag: "x", Specs: []Spec{{Name: "script"}}}},
		{name: "missing", cfg: Config{BinDir: dir, OutDir: t.TempDir(), Tag: "x", Specs: []Spec{{Name: "nope"}}}},
		{name: "bad name", cfg: Config{BinDir: dir, OutDir: t.TempDir(), Tag: "x", Specs: []Spec{{Name: "a/b"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(tc.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if got := Missing(dir, []Spec{{Name: "script", Extra: []string{"plugin"}}}); !cmp.Equal(got, []string{"plugin"}) {
		t.Errorf("Missing = %v", got)
	}
}

func TestDynamicBinaryRefused(t *testing.T) {
	for _, p := range []string{"/bin/ls", "/usr/bin/env"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if _, err := inspectBinary(p); errors.Is(err, ErrNotStatic) {
			return
		}
	}
	t.Skip("no dynamically linked system binary to check against")
}
