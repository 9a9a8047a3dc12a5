package cli

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBugReport(t *testing.T) {
	h := newHarness(t, baseObjects())
	h.http.bodies["ztunnel-aaaa:15020/metrics"] = []byte("istio_tcp_connections_opened_total 1\n")
	h.http.bodies["ztunnel-aaaa:15000/config_dump"] = []byte(`{"certificates":[{"chainPem":"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}]}`)
	file := filepath.Join(t.TempDir(), "r.tar.gz")
	out, errOut, code := h.run(t, "bug-report", "--file", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s carries a private key", hd.Name)
		}
		names = append(names, hd.Name)
	}
	golden(t, "bug-report-files", []byte(strings.ReplaceAll(out, file, "FILE")+strings.Join(names, "\n")+"\n"))
}
