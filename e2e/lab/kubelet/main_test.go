package kubelet

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as the container shim.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == shimCommand {
		os.Exit(ShimMain(os.Args[1:]))
	}
	// The fake clientset does not serve streaming watch-list.
	if err := os.Setenv("KUBE_FEATURE_WatchListClient", "false"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
