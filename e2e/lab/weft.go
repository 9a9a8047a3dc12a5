package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// WeftComponents are the rollouts InstallWeft's manifests create, in the
// order WaitWeftReady waits for them.
var WeftComponents = []string{"deployment/istiod-lite", "daemonset/ztunnel", "daemonset/weft-cni-agent"}

// InstallWeft installs Weft on the lab from the repository's manifests as
// the README says: the CRDs first (server-side apply), until they are
// Established, then the whole kustomization, unchanged. The CRDs must have
// been generated (go run ./cmd/weft-build crds). Applying twice is
// harmless.
func InstallWeft(ctx context.Context, c *Cluster) error {
	if _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-k", filepath.Join(c.Root, "manifests", "base", "crds")); err != nil {
		return fmt.Errorf("install weft CRDs: %w", err)
	}
	if _, err := c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"); err != nil {
		return fmt.Errorf("wait for weft CRDs: %w", err)
	}
	if _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-k", filepath.Join(c.Root, "manifests")); err != nil {
		return fmt.Errorf("install weft: %w", err)
	}
	return nil
}

// WaitWeftReady waits up to timeout for each of WeftComponents in
// weft-system to finish rolling out.
func WaitWeftReady(ctx context.Context, c *Cluster, timeout time.Duration) error {
	for _, r := range WeftComponents {
		if _, err := c.Kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", r, "--timeout="+timeout.String()); err != nil {
			return fmt.Errorf("wait for %s: %w", r, err)
		}
	}
	return nil
}
