//go:build linux

package nodeagent

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftmesh/weft/pkg/netns"
)

func TestProcFinderKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	pod, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pod.Close() }()
	err = pod.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.250.3.4/24")
		return netlink.AddrAdd(v, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A process of the pod, started inside its namespace.
	var cmd *exec.Cmd
	if err := pod.Do(func() error {
		cmd = exec.Command("sleep", "30")
		return cmd.Start()
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	found, err := procFinder{}.Find([]string{"10.250.3.4"})
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	defer func() { _ = found.Close() }()
	if same, _ := found.SameAs(pod); !same {
		t.Fatal("Find returned another namespace")
	}
	if _, err := (procFinder{}).Find([]string{"10.250.3.5"}); !errors.Is(err, ErrNetnsNotFound) {
		t.Fatalf("Find(unknown ip) err = %v", err)
	}
}
