package lab

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// startTimeout bounds Start, including a cold build of the pinned binaries.
const startTimeout = 40 * time.Minute

// Lab is a running lab for a test; Start makes one and t.Cleanup removes it.
type Lab struct {
	t  testing.TB
	c  *Cluster
	cs *kubernetes.Clientset
}

// Start builds (if needed) and starts a lab for t with a fresh name, waits
// until its nodes are Ready and, unless o.SkipDNS, CoreDNS serves, and
// registers its teardown with t.Cleanup (which also runs when the test
// fails; component logs are then written to the test log first). It skips
// the test when not running as root. A cold build of the pinned binaries
// takes 10+ minutes; run e2e tests with a long -timeout.
func Start(t testing.TB, o Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if o.Root == "" {
		root, err := RepoRoot(".")
		if err != nil {
			t.Fatal(err)
		}
		o.Root = root
	}
	// Labs of test runs that were killed (a -timeout panic skips cleanup)
	// go first.
	if err := SweepDead(ctx, o.Root, o.Log); err != nil {
		t.Logf("sweep dead labs: %v", err)
	}
	c, err := Up(ctx, o)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	l := &Lab{t: t, c: c}
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(40)
		}
		if err := c.Close(); err != nil {
			t.Errorf("tear down lab %s: %v", c.Plan.Name, err)
		}
	})
	if l.cs, err = c.Clientset(); err != nil {
		t.Fatal(err)
	}
	if !o.SkipDNS {
		if err := c.WaitDNS(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// Cluster returns the underlying cluster.
func (l *Lab) Cluster() *Cluster { return l.c }

// Name is the lab's name, the prefix of everything it made.
func (l *Lab) Name() string { return l.c.Plan.Name }

// Kubeconfig is the path of the admin kubeconfig.
func (l *Lab) Kubeconfig() string { return l.c.Kubeconfig }

// Clientset is an admin client for the lab's API server.
func (l *Lab) Clientset() *kubernetes.Clientset { return l.cs }

// Nodes lists the lab's nodes: names, underlay IPs, pod CIDRs, netns names.
func (l *Lab) Nodes() []NodePlan { return l.c.Plan.Nodes }

// Kubectl runs the lab's kubectl as the cluster admin (2 minute limit) and
// returns its standard output.
func (l *Lab) Kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return l.c.Kubectl(ctx, nil, args...)
}

// Apply applies a YAML manifest with kubectl.
func (l *Lab) Apply(manifest string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := l.c.Kubectl(ctx, strings.NewReader(manifest), "apply", "-f", "-")
	return err
}

// Exec runs argv in the network namespace of pod namespace/name (see
// ExecIn: lab binaries such as echo come first) and returns its standard
// output; the error includes standard error.
func (l *Lab) Exec(ctx context.Context, namespace, name string, argv ...string) (string, error) {
	path, err := PodNetns(ctx, l.cs, l.Name(), namespace, name)
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	if err := ExecIn(ctx, path, BinDirs(l.c.Root), argv, nil, &out, &errb); err != nil {
		return out.String(), fmt.Errorf("exec %v in %s/%s: %w: %s", argv, namespace, name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
