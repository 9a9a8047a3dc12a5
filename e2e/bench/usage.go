package bench

import (
	"fmt"
	"path/filepath"

	"github.com/weftmesh/weft/e2e/loadgen"
)

// Process roles whose cost the benchmark reads from /proc.
const (
	roleZtunnel   = "ztunnel"
	roleWaypoint  = "waypoint"
	roleRelay     = "tls-relay"
	roleNginx     = "nginx"
	roleNginxMesh = "nginx-mesh"
	roleServer    = "server"
)

// procs finds the lab's processes of role.
func (b *bench) procs(role string) ([]proc, error) {
	var exe, netns, mode string
	switch role {
	case roleZtunnel, roleWaypoint:
		exe = filepath.Join(b.binDir, role)
	case roleRelay, roleServer:
		exe, mode = filepath.Join(b.binDir, "weft-load"), map[string]string{roleRelay: "relay", roleServer: "serve"}[role]
	case roleNginx, roleNginxMesh:
		if b.topo == nil || b.topo.nginxNetns[role] == "" {
			return nil, nil
		}
		exe, netns = loadgen.NginxBin, b.topo.nginxNetns[role]
	default:
		return nil, fmt.Errorf("unknown role %q", role)
	}
	ps, err := findProcs(exe, netns)
	if err != nil {
		return nil, err
	}
	if mode == "" {
		return ps, nil
	}
	var out []proc
	for _, p := range ps {
		if len(p.Args) > 1 && p.Args[1] == mode {
			out = append(out, p)
		}
	}
	return out, nil
}

// usage is a role's CPU time so far and resident memory now.
type usage struct {
	// Proxies is how many proxies the role's processes make: nginx's
	// master and worker are one proxy; each ztunnel or relay is one.
	Proxies int
	// CPU is the processes' total CPU seconds; RSS their total MiB.
	CPU, RSS float64
}

// sample reads role's usage.
func (b *bench) sample(role string) (usage, error) {
	ps, err := b.procs(role)
	if err != nil {
		return usage{}, err
	}
	if len(ps) == 0 {
		return usage{}, fmt.Errorf("no %s process found", role)
	}
	u, err := sumUsage(ps)
	if err != nil {
		return usage{}, err
	}
	if role == roleNginx || role == roleNginxMesh {
		u.Proxies = 1
	}
	return u, nil
}

// sumUsage adds up the CPU seconds and resident MiB of ps; Proxies is
// their number.
func sumUsage(ps []proc) (usage, error) {
	u := usage{Proxies: len(ps)}
	for _, p := range ps {
		c, err := cpuSeconds(p.PID)
		if err != nil {
			return usage{}, err
		}
		r, err := rssMB(p.PID)
		if err != nil {
			return usage{}, err
		}
		u.CPU += c
		u.RSS += r
	}
	return u, nil
}
