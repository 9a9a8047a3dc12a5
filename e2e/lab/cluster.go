package lab

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Options configure a lab.
type Options struct {
	// Name is the lab's name and the prefix of everything it creates
	// (see ValidateName). Empty means NewName().
	Name string
	// Nodes is the number of nodes (default 2).
	Nodes int
	// Root is the repository root (default: found from the working dir).
	Root string
	// Binaries, when set, skips EnsureBinaries.
	Binaries *Binaries
	// Shim is the weft-lab binary run as each node's kubelet and container
	// shim (default Binaries.WeftLab).
	Shim string
	// Images adds to or overrides the lab's image table (see Images).
	Images map[string]string
	// SkipDNS leaves out the CoreDNS addon.
	SkipDNS bool
	// BuildOutput receives build output (nil discards it).
	BuildOutput io.Writer
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Cluster is a running lab owned by this process. Close stops it and removes
// everything it made.
type Cluster struct {
	Plan       Plan
	Root, Dir  string
	Kubeconfig string
	Bins       Binaries

	log       *slog.Logger
	k         *pki
	procs     procGroup
	state     State
	closeOnce sync.Once
	closeErr  error
}

// Clientset returns a client for the lab's API server as the cluster admin.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) { return ClientsetFor(c.Kubeconfig) }

// Err reports a component that has exited unexpectedly, or nil.
func (c *Cluster) Err() error {
	if p := c.procs.firstExited(); p != nil {
		return p.exitError()
	}
	return nil
}

// ClientsetFor returns an admin client from a lab kubeconfig file.
func ClientsetFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load lab kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("lab client: %w", err)
	}
	return cs, nil
}

// logTails logs the end of every component's log, so a failed start can be
// diagnosed after teardown removed the files.
func (c *Cluster) logTails(n int) {
	files, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "*.log"))
	for _, f := range files {
		if t := tail(f, n); t != "" {
			c.log.Error("component log", "component", strings.TrimSuffix(filepath.Base(f), ".log"), "tail", t)
		}
	}
}
