package lab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestImageFiles(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "weft-cni")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		images map[string]string
		want   map[string]map[string]string
	}{
		{"built", map[string]string{"weft/weft-cni": plugin},
			map[string]map[string]string{"weft/weft-cni-agent": {"/usr/local/bin/weft-cni": plugin}}},
		{"not in table", map[string]string{"weft/ztunnel": plugin}, nil},
		{"not built", map[string]string{"weft/weft-cni": filepath.Join(dir, "missing")}, nil},
		{"a directory", map[string]string{"weft/weft-cni": dir}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, imageFiles(tc.images)); diff != "" {
				t.Errorf("imageFiles (-want +got):\n%s", diff)
			}
		})
	}
}
