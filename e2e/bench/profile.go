package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/e2e/loadgen"
)

// Profile is a CPU profile taken under load, with its top functions.
type Profile struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Load string `json:"load"`
	Top  string `json:"top"`
}

// profileSeconds is the length of each CPU profile.
const profileSeconds = 4

// profiles takes CPU profiles of the waypoint and the client-side ztunnel
// (their loopback admin servers' /debug/pprof/profile) while the waypoint
// path carries 1,000 rps over 16 connections, saves them under
// dir/profiles and keeps their top functions in the report.
func (b *bench) profiles(ctx context.Context, dir string) error {
	dir = filepath.Join(dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("profiles dir: %w", err)
	}
	type target struct {
		name, bin string
		pid       int
	}
	var targets []target
	if ps, err := b.procs(roleWaypoint); err == nil && len(ps) > 0 {
		targets = append(targets, target{"waypoint", filepath.Join(b.binDir, "waypoint"), ps[0].PID})
	}
	if ps, err := b.procs(roleZtunnel); err == nil {
		for _, p := range ps {
			if p.Node == b.topo.client.Name {
				targets = append(targets, target{"ztunnel-client-side", filepath.Join(b.binDir, "ztunnel"), p.PID})
			}
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf("no waypoint or ztunnel process to profile")
	}
	const load = "1,000 rps over 16 connections on the waypoint path"
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loadDone := make(chan error, 1)
	go func() { // owned by profiles: waited for below
		var res loadgen.LatencyResult
		p := b.topo.paths[pathWaypoint]
		loadDone <- b.load(lctx, p, &res, "latency", "--addr="+p.HTTP, "--rate=1000", "--conns=16", "--warmup=0s",
			fmt.Sprintf("--duration=%ds", profileSeconds+2))
	}()
	time.Sleep(time.Second)
	var wg sync.WaitGroup
	errs := make([]error, len(targets))
	for i, t := range targets {
		wg.Add(1)
		go func() { // owned by profiles: waited for below
			defer wg.Done()
			file := filepath.Join(dir, t.name+".pprof")
			url := fmt.Sprintf("http://127.0.0.1:15000/debug/pprof/profile?seconds=%d", profileSeconds)
			var stderr bytes.Buffer
			if err := lab.ExecIn(ctx, fmt.Sprintf("/proc/%d/ns/net", t.pid), nil, []string{"curl", "-sf", "--max-time", "20", "-o", file, url}, nil, nil, &stderr); err != nil {
				errs[i] = fmt.Errorf("profile %s: %w: %s", t.name, err, stderr.String())
				return
			}
			top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=25", t.bin, file).Output()
			if err != nil {
				errs[i] = fmt.Errorf("pprof -top %s: %w", t.name, err)
				return
			}
			b.rep.addProfile(Profile{Name: t.name, Path: relPath(b.cfg.Root, file), Load: load, Top: strings.TrimSpace(string(top))})
		}()
	}
	wg.Wait()
	if err := <-loadDone; err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var profileMu sync.Mutex

func (r *Report) addProfile(p Profile) {
	profileMu.Lock()
	defer profileMu.Unlock()
	r.Profiles = append(r.Profiles, p)
}

// relPath makes p relative to root, for reports that name no machine paths.
func relPath(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil {
		return rel
	}
	return p
}
