package xds

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokenCredentials(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := TokenCredentials{File: f, ClusterID: "Kubernetes", Secure: true}
	md, err := c.GetRequestMetadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"authorization": "Bearer first", "clusterid": "Kubernetes"}, md); d != "" {
		t.Errorf("metadata (-want +got):\n%s", d)
	}
	// A rotated token is read on the next call.
	if err := os.WriteFile(f, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if md, _ := c.GetRequestMetadata(t.Context()); md["authorization"] != "Bearer second" {
		t.Errorf("after rotation: %q", md["authorization"])
	}
	if !c.RequireTransportSecurity() {
		t.Error("Secure credentials must require transport security")
	}
	if _, err := (TokenCredentials{File: filepath.Join(t.TempDir(), "missing")}).GetRequestMetadata(t.Context()); err == nil {
		t.Error("a missing token file must be an error")
	}
}
