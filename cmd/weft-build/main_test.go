package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	out := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{name: "no command", wantErr: "usage"},
		{name: "unknown command", args: []string{"nope"}, wantErr: "unknown command"},
		{name: "unknown image", args: []string{"images", "--only", "nope"}, wantErr: "unknown image"},
		{name: "missing binaries", args: []string{"images", "--bin-dir", out, "--out", out, "--only", "ztunnel"}, wantErr: "not built"},
		{name: "skip missing", args: []string{"images", "--bin-dir", out, "--out", out, "--only", "ztunnel", "--skip-missing"}, wantOut: "skipping images without binaries: ztunnel"},
		{name: "crds", args: []string{"crds", "--out", filepath.Join(out, "crds")}, wantOut: "CRDs from istio.io/api"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := run(context.Background(), tc.args, &buf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), tc.wantOut) {
				t.Errorf("output %q lacks %q", buf.String(), tc.wantOut)
			}
		})
	}
}
