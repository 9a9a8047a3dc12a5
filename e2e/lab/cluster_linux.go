package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// globalLock serialises network setup between labs on this machine.
const globalLock = "/run/weft-lab.lock"

// Up builds (if needed) and starts a lab, and returns once every node is
// Ready (and, unless SkipDNS, CoreDNS is applied). On error everything made
// so far is removed. The caller must Close the Cluster.
func Up(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.Name == "" {
		o.Name = NewName()
	}
	if o.Root == "" {
		if o.Root, err = RepoRoot("."); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (network namespaces, veths, mounts)")
	}
	if err := ValidateName(o.Name); err != nil {
		return nil, err
	}
	if err := checkHostTools(); err != nil {
		return nil, err
	}
	var bins Binaries
	if o.Binaries != nil {
		bins = *o.Binaries
	} else if bins, err = EnsureBinaries(ctx, o.Root, o.BuildOutput, o.Log); err != nil {
		return nil, err
	}
	if o.Shim == "" {
		o.Shim = bins.WeftLab
	}
	start := time.Now() // NodesReady counts from here: binaries are built
	log := o.Log.With("lab", o.Name)
	dir := StateDir(o.Root, o.Name)

	if s, err := ReadState(dir); err == nil && s.SupervisorPID != os.Getpid() && supervisorAlive(s) {
		return nil, fmt.Errorf("lab %s is already running (pid %d); stop it with weft-lab down --name %s", o.Name, s.SupervisorPID, o.Name)
	}
	// A previous lab of this name that is no longer running leaves nothing.
	if err := sweep(o.Root, o.Name, log); err != nil {
		return nil, fmt.Errorf("clear leftovers of lab %s: %w", o.Name, err)
	}
	c = &Cluster{Root: o.Root, Dir: dir, Bins: bins, log: log}
	defer func() {
		if err != nil {
			c.logTails(20)
			c.writePhase(PhaseFailed, err)
			if cerr := c.Close(); cerr != nil {
				log.Error("tear down after failed start", "err", cerr)
			}
			c = nil
		}
	}()
	for _, d := range []string{"logs", "pki", "etcd", "nodes"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return c, fmt.Errorf("create state dir: %w", err)
		}
	}
	c.state = State{Name: o.Name, Phase: PhaseStarting, SupervisorPID: os.Getpid(), Dir: dir,
		Kubeconfig: filepath.Join(dir, "kubeconfig"), PIDs: map[string]int{}, StartedAt: start}
	c.Kubeconfig = c.state.Kubeconfig
	if c.state.SupervisorStart, err = procStartTicks(os.Getpid()); err != nil {
		return c, fmt.Errorf("read own start time: %w", err)
	}
	if err := writeState(dir, c.state); err != nil {
		return c, err
	}

	if err := c.network(ctx, o); err != nil {
		return c, err
	}
	c.state.APIServer = c.Plan.APIServerURL()
	c.state.ClusterCIDR = c.Plan.ClusterCIDR.String()
	for _, n := range c.Plan.Nodes {
		c.state.Nodes = append(c.state.Nodes, NodeState{Name: n.Name, IP: n.IP.String(), PodCIDR: n.PodCIDR.String(), Netns: n.Netns})
	}
	if c.k, err = newPKI(filepath.Join(dir, "pki"), c.Plan); err != nil {
		return c, err
	}
	if err := c.k.clientKubeconfig(c.Kubeconfig, c.Plan.APIServerURL(), "kubernetes-admin", []string{"system:masters"}); err != nil {
		return c, err
	}
	if err := c.startControlPlane(ctx); err != nil {
		return c, err
	}
	images, err := Images(o.Root, bins)
	if err != nil {
		return c, err
	}
	for k, v := range o.Images {
		images[k] = v
	}
	if err := c.startNodes(images, o.Shim); err != nil {
		return c, err
	}
	if !o.SkipDNS {
		if _, err := c.Kubectl(ctx, strings.NewReader(corednsYAML()), "apply", "-f", "-"); err != nil {
			return c, fmt.Errorf("apply CoreDNS: %w", err)
		}
	}
	if err := c.waitNodesReady(ctx); err != nil {
		return c, err
	}
	c.state.NodesReady = time.Since(start)
	c.state.Phase = PhaseReady
	if err := writeState(dir, c.state); err != nil {
		return c, err
	}
	log.Info("lab ready", "nodes", len(c.Plan.Nodes), "took", c.state.NodesReady.Round(100*time.Millisecond), "kubeconfig", c.Kubeconfig)
	return c, nil
}

func (c *Cluster) network(ctx context.Context, o Options) error {
	unlock, err := lockFile(ctx, globalLock)
	if err != nil {
		return err
	}
	defer unlock()
	if err := prepareNetnsDir(c.log); err != nil {
		return err
	}
	subnet, err := chooseSubnet(o.Name)
	if err != nil {
		return err
	}
	if c.Plan, err = NewPlan(o.Name, o.Nodes, subnet); err != nil {
		return err
	}
	if err := buildNetwork(c.Plan); err != nil {
		return fmt.Errorf("build lab network: %w", err)
	}
	return nil
}

func (c *Cluster) start(s procSpec, grace time.Duration) error {
	s.logDir = filepath.Join(c.Dir, "logs")
	p, err := startProc(s, c.log)
	if err != nil {
		return err
	}
	c.procs.add(p, grace)
	c.state.PIDs[s.name] = p.pid()
	return nil
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	cp := netnsPath(c.Plan.ControlPlaneNetns())
	if err := c.start(procSpec{name: "etcd", netns: cp, bin: c.Bins.Etcd, args: etcdArgs(filepath.Join(c.Dir, "etcd"))}, controlPlaneGrace); err != nil {
		return err
	}
	if err := c.start(procSpec{name: "kube-apiserver", netns: cp, bin: c.Bins.APIServer, args: apiServerArgs(c.Plan, c.k)}, controlPlaneGrace); err != nil {
		return err
	}
	pkiDir := filepath.Join(c.Dir, "pki")
	kcm := kubeconfigPath(pkiDir, "system:kube-controller-manager")
	sched := kubeconfigPath(pkiDir, "system:kube-scheduler")
	for path, user := range map[string]string{kcm: "system:kube-controller-manager", sched: "system:kube-scheduler"} {
		if err := c.k.clientKubeconfig(path, c.Plan.APIServerURL(), user, nil); err != nil {
			return err
		}
	}
	// kube-controller-manager gives up if the API server is not ready yet.
	if err := c.waitAPIServer(ctx); err != nil {
		return err
	}
	if err := c.start(procSpec{name: "kube-controller-manager", netns: cp, bin: c.Bins.ControllerManager, args: controllerManagerArgs(kcm, c.k, c.Plan.ClusterCIDR)}, controlPlaneGrace); err != nil {
		return err
	}
	return c.start(procSpec{name: "kube-scheduler", netns: cp, bin: c.Bins.Scheduler, args: schedulerArgs(sched)}, controlPlaneGrace)
}

func (c *Cluster) startNodes(images map[string]string, shim string) error {
	for _, n := range c.Plan.Nodes {
		cfg, err := prepareNode(c.Dir, c.Plan, n, c.k, c.Bins, images, shim)
		if err != nil {
			return err
		}
		ns := netnsPath(n.Netns)
		d := newNodeDirs(c.Dir, n)
		if err := c.start(procSpec{name: n.Name + "-kubelet", netns: ns, bin: shim, args: []string{"kubelet", "--config", cfg}, workDir: d.base}, kubeletGrace); err != nil {
			return err
		}
		if err := c.start(procSpec{name: n.Name + "-kube-proxy", netns: ns, bin: c.Bins.Proxy, args: kubeProxyArgs(n, filepath.Join(d.base, "kube-proxy.kubeconfig"), c.Plan.ClusterCIDR), workDir: d.base}, controlPlaneGrace); err != nil {
			return err
		}
	}
	return writeState(c.Dir, c.state)
}

// Close stops every component (kubelets first, so they remove their pods)
// and removes every namespace, link, mount and the state directory. It is
// idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.writePhase(PhaseStopping, nil)
		c.procs.stopAll()
		c.closeErr = sweep(c.Root, c.state.Name, c.log)
	})
	return c.closeErr
}

func (c *Cluster) writePhase(phase string, err error) {
	if c.state.Name == "" {
		return
	}
	c.state.Phase = phase
	if err != nil {
		c.state.Error = err.Error()
	}
	if werr := writeState(c.Dir, c.state); werr != nil {
		c.log.Warn("record lab phase", "phase", phase, "err", werr)
	}
}

// checkHostTools reports missing host programs the lab's components exec.
func checkHostTools() error {
	var missing []string
	for _, tool := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kube-proxy needs %s: apt-get install -y iptables conntrack", strings.Join(missing, ", "))
	}
	return nil
}
