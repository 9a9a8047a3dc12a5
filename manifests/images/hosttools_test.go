package images

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestHostTools builds the CNI agent's image with the build machine's
// iptables and, as root, runs the copied iptables inside the extracted
// image to prove that every library and module it needs came along.
func TestHostTools(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/xtables-nft-multi"); err != nil {
		t.Skip("iptables is not installed on this machine (apt-get install iptables)")
	}
	var spec Spec
	for _, s := range DefaultSpecs() {
		if s.Name == "weft-cni-agent" {
			spec = s
		}
	}
	bins := buildStatic(t, "weft-cni-agent", "weft-cni")
	img, _, err := Image(Config{BinDir: bins, Tag: "test"}, spec)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("%d layers, want base, host tools, binaries", len(layers))
	}
	files := layerFiles(t, layers[1])
	for _, want := range []string{"usr/sbin/iptables", "usr/sbin/iptables-nft", "usr/sbin/xtables-nft-multi", "usr/sbin/xtables-legacy-multi"} {
		if _, ok := files[want]; !ok {
			t.Errorf("tools layer lacks %s", want)
		}
	}
	var haveLibc, haveMark bool
	for f := range files {
		haveLibc = haveLibc || strings.HasSuffix(f, "/libc.so.6")
		haveMark = haveMark || strings.HasSuffix(f, "/xtables/libxt_mark.so")
	}
	if !haveLibc || !haveMark {
		t.Errorf("tools layer: libc %v, xtables mark module %v", haveLibc, haveMark)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cf.Config.Env, " "), "/usr/sbin") {
		t.Errorf("PATH %v does not reach the iptables programs", cf.Config.Env)
	}

	if os.Geteuid() != 0 {
		t.Skip("running the copied iptables needs root (chroot)")
	}
	root := t.TempDir()
	extract(t, mutate.Extract(img), root)
	for _, prog := range []string{"/usr/sbin/iptables-nft", "/usr/sbin/iptables-legacy", "/usr/sbin/iptables"} {
		var out bytes.Buffer
		cmd := exec.Command("chroot", root, prog, "--version")
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		if err := cmd.Run(); err != nil || !strings.HasPrefix(out.String(), "iptables v") {
			t.Errorf("%s --version in the image: %v: %s", prog, err, out.String())
		}
	}
	// A rule like the CNI agent's, in a throwaway network namespace, loads
	// the extension modules (mark, tcp, REDIRECT) from the image.
	if _, err := exec.LookPath("unshare"); err != nil {
		return
	}
	// The image has no shell: the host's runs both commands in one
	// namespace, each chrooted into the image.
	ipt := "chroot " + root + " /usr/sbin/iptables-nft"
	script := ipt + " -t nat -A OUTPUT -p tcp ! -d 127.0.0.1/32 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001 && " +
		ipt + " -t nat -S OUTPUT"
	var out bytes.Buffer
	cmd := exec.Command("unshare", "--net", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "REDIRECT --to-ports 15001") {
		t.Errorf("iptables rule with extensions in the image: %v: %s", err, out.String())
	}
}

// extract writes a flattened image filesystem into dir.
func extract(t *testing.T, rc io.ReadCloser, dir string) {
	t.Helper()
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, os.FileMode(h.Mode)&0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
}
