package crds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Module is a module's location in the module cache.
type Module struct {
	Path    string
	Version string
	Dir     string
}

// ModuleLocator finds a required module's source folder.
type ModuleLocator interface {
	Locate(ctx context.Context, module string) (Module, error)
}

// GoList locates modules with `go list -m -json` run in WorkDir (the main
// module's root, or any folder inside it), downloading a module that is
// required but not yet in the cache with `go mod download -json`.
type GoList struct {
	// Go is the go command; "go" when empty.
	Go string
	// WorkDir is where the go command runs; the current folder when empty.
	WorkDir string
}

var _ ModuleLocator = GoList{}

type goModule struct {
	Path    string
	Version string
	Dir     string
	Error   any
}

// Locate implements ModuleLocator.
func (g GoList) Locate(ctx context.Context, module string) (Module, error) {
	m, err := g.run(ctx, "list", "-m", "-json", module)
	if err != nil {
		return Module{}, err
	}
	if m.Dir == "" {
		if m, err = g.run(ctx, "mod", "download", "-json", module); err != nil {
			return Module{}, err
		}
	}
	if m.Dir == "" || m.Version == "" {
		return Module{}, fmt.Errorf("module %s: the go command reported no version or folder; is it required in go.mod?", module)
	}
	return Module{Path: m.Path, Version: m.Version, Dir: m.Dir}, nil
}

func (g GoList) run(ctx context.Context, args ...string) (goModule, error) {
	gocmd := g.Go
	if gocmd == "" {
		gocmd = "go"
	}
	cmd := exec.CommandContext(ctx, gocmd, args...)
	cmd.Dir = g.WorkDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return goModule{}, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var m goModule
	if err := json.Unmarshal(out, &m); err != nil {
		return goModule{}, fmt.Errorf("go %s: decode output: %w", strings.Join(args, " "), err)
	}
	if m.Error != nil {
		return goModule{}, fmt.Errorf("go %s: %v", strings.Join(args, " "), m.Error)
	}
	return m, nil
}
