package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: admin
  user: {token: abc}
contexts:
- name: lab
  context: {cluster: lab, user: admin, namespace: demo}
- name: other
  context: {cluster: lab, user: admin}
current-context: lab
`

func TestNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   Options
		wantNS string
		err    string
	}{
		{name: "context namespace", opts: Options{Kubeconfig: path}, wantNS: "demo"},
		{name: "-n wins", opts: Options{Kubeconfig: path, Namespace: "shop"}, wantNS: "shop"},
		{name: "other context", opts: Options{Kubeconfig: path, Context: "other"}, wantNS: "default"},
		{name: "unknown context", opts: Options{Kubeconfig: path, Context: "nope"}, err: "kubectl config get-contexts"},
		{name: "missing file", opts: Options{Kubeconfig: path + ".missing"}, err: "check the --kubeconfig path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.Namespace != tc.wantNS {
				t.Fatalf("New = %+v, %v; want namespace %s", c, err, tc.wantNS)
			}
		})
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	if _, err := New(Options{}); !errors.Is(err, ErrNoKubeconfig) {
		t.Fatalf("no kubeconfig anywhere: %v", err)
	}
}
