//go:build e2e

package controlplane

import "testing"

// TestControlPlane installs istiod-lite on a 2-node lab and runs the CA
// and discovery checks against it; they share the lab because starting one
// takes about a minute.
func TestControlPlane(t *testing.T) {
	e := setup(t)
	t.Run("CA", func(t *testing.T) { testCA(t, e) })
	t.Run("discovery", func(t *testing.T) { testDiscovery(t, e) })
	t.Run("L7", func(t *testing.T) { testL7(t, e) })
}
