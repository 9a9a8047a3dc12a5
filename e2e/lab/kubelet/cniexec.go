package kubelet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// nodeViewPaths are the host paths a CNI plugin shares with the node's
// agents (hostPath volumes); a plugin invocation sees the node root's
// directories there instead of the real host's.
var nodeViewPaths = []string{"/var/run/weft", "/var/run/ztunnel", "/var/log"}

// nodeViewExec runs CNI plugins through the shim ("ShimPath kubelet-shim
// cni ...") so that each invocation sees the node's view of the paths in
// nodeViewPaths, as a plugin on a real node sees what hostPath pods see.
// Everything else (network namespace, CNI_* environment, stdin, bin and
// cache dirs) is the host's, as with a direct exec.
type nodeViewExec struct {
	shim    string
	rootDir string
	scratch string // host dir the shim mounts a private tmpfs on
	stderr  *os.File
	version.PluginDecoder
}

var _ invoke.Exec = (*nodeViewExec)(nil)

// newNodeViewExec creates the scratch dir and the node-root sources of
// nodeViewPaths, so the mounts have something to bind.
func newNodeViewExec(shim, rootDir, scratch string) (*nodeViewExec, error) {
	dirs := []string{scratch}
	for _, p := range nodeViewPaths {
		dirs = append(dirs, hostPathFor(rootDir, "", p))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create cni node view dir: %w", err)
		}
	}
	return &nodeViewExec{shim: shim, rootDir: rootDir, scratch: scratch, stderr: os.Stderr, PluginDecoder: version.PluginDecoder{}}, nil
}

// cniShimArgs is the shim command line that runs plugin in the node's view.
func (e *nodeViewExec) cniShimArgs(plugin string) []string {
	return []string{shimCommand, "cni", e.scratch, e.rootDir, "--", plugin}
}

// ExecPlugin runs the plugin with stdinData and environ and returns its
// stdout; a failing plugin's CNI error (JSON on stdout) is returned as a
// *types.Error.
func (e *nodeViewExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		var stdout, stderr bytes.Buffer
		c := exec.CommandContext(ctx, e.shim, e.cniShimArgs(pluginPath)...)
		c.Env = environ
		c.Stdin = bytes.NewReader(stdinData)
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if err == nil {
			if e.stderr != nil && stderr.Len() > 0 {
				_, _ = stderr.WriteTo(e.stderr)
			}
			return stdout.Bytes(), nil
		}
		// An installer may be writing the plugin right now.
		if attempt < 5 && strings.Contains(stderr.String(), "text file busy") && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		return nil, pluginError(pluginPath, err, stdout.Bytes(), stderr.Bytes())
	}
}

// pluginError prefers the CNI error a plugin printed on stdout; otherwise
// it reports the exit and stderr.
func pluginError(plugin string, err error, stdout, stderr []byte) error {
	if len(stdout) > 0 {
		var cniErr types.Error
		if json.Unmarshal(stdout, &cniErr) == nil && cniErr.Code != 0 {
			return &cniErr
		}
	}
	msg := strings.TrimSpace(string(stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(stdout))
	}
	return &types.Error{Code: types.ErrInternal, Msg: fmt.Sprintf("netplugin %s failed: %v", filepath.Base(plugin), err), Details: msg}
}

// FindInPath looks plugin up in the host's bin dirs.
func (e *nodeViewExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}
