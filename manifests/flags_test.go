package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagsAndEnvExist checks that every --flag a manifest passes and every
// environment variable it sets is one the component's command defines (by
// finding its quoted name in cmd/<binary>), so that a renamed flag fails
// here rather than as a crash-looping pod.
func TestFlagsAndEnvExist(t *testing.T) {
	all := typed(t, renderInstall(t))
	for name, tmpl := range podSpecs(all) {
		for _, c := range allContainers(&tmpl.Spec) {
			bin := strings.TrimPrefix(c.Image, "weft/")
			bin, _, _ = strings.Cut(bin, ":")
			src := commandSource(t, bin)
			if src == "" {
				t.Logf("%s: cmd/%s is not in the tree yet; not checked", name, bin)
				continue
			}
			for _, a := range c.Args {
				flag, ok := strings.CutPrefix(a, "--")
				if !ok {
					continue
				}
				flag, _, _ = strings.Cut(flag, "=")
				if !strings.Contains(src, `"`+flag+`"`) {
					t.Errorf("%s: container %s passes --%s, which cmd/%s does not define", name, c.Name, flag, bin)
				}
			}
			for _, e := range c.Env {
				if !strings.Contains(src, `"`+e.Name+`"`) {
					t.Errorf("%s: container %s sets %s, which cmd/%s does not read", name, c.Name, e.Name, bin)
				}
			}
		}
	}
}

// commandSource returns the Go source of cmd/<bin>, or "" if it does not
// exist.
func commandSource(t *testing.T, bin string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "cmd", bin, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
