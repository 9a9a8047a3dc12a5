//go:build linux

package nodeagent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
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

// TestProcFinderOnlyThisNode builds what two labs on one host look like:
// two pods with the same IP, one wired by a veth to this process's
// namespace (our node), one to another namespace (another lab's node),
// each with a running process. Find, scanning both a netns directory and
// /proc, must return our node's pod, and with only the other one left
// report not found; Holds agrees.
func TestProcFinderOnlyThisNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	const ip = "10.250.9.4"
	suffix := fmt.Sprintf("%04x", rand.Uint32()&0xffff)
	other, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	self, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = self.Close() })

	// podOn makes a pod netns whose eth0 has ip and whose veth peer lives
	// in node, bind-mounted in dir and with a sleeping process inside.
	dir := t.TempDir()
	podOn := func(name string, node *netns.NetNS) *netns.NetNS {
		t.Helper()
		pod, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pod.Close() })
		peer := "wt-na" + name + suffix
		err = node.Do(func() error {
			v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: peer}, PeerName: "eth0", PeerNamespace: netlink.NsFd(pod.Fd())}
			return netlink.LinkAdd(v)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = node.Do(func() error {
				if l, err := netlink.LinkByName(peer); err == nil {
					return netlink.LinkDel(l)
				}
				return nil
			})
		})
		err = pod.Do(func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			addr, _ := netlink.ParseAddr(ip + "/24")
			return netlink.AddrAdd(l, addr)
		})
		if err != nil {
			t.Fatal(err)
		}
		var cmd *exec.Cmd
		if err := pod.Do(func() error { cmd = exec.Command("sleep", "30"); return cmd.Start() }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		// A bind mount would need the mount namespace; a symlink to the
		// process's namespace file stands in for the runtime's netns dir.
		if err := os.Symlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		return pod
	}
	// The other lab's pod first, so a scan meets it first.
	foreign := podOn("a", other)
	mine := podOn("b", self)

	f := procFinder{netnsDirs: []string{dir}}
	for _, tc := range []struct {
		name string
		f    procFinder
	}{{"netns dir", f}, {"proc only", procFinder{}}} {
		got, err := tc.f.Find([]string{ip})
		if err != nil {
			t.Fatalf("%s: Find: %v", tc.name, err)
		}
		same, _ := got.SameAs(mine)
		_ = got.Close()
		if !same {
			t.Fatalf("%s: Find returned a namespace that is not this node's pod", tc.name)
		}
	}
	if !f.Holds(mine, []string{ip}) || f.Holds(foreign, []string{ip}) {
		t.Errorf("Holds(mine, foreign) = %v, %v; want true, false", f.Holds(mine, []string{ip}), f.Holds(foreign, []string{ip}))
	}
	if f.Holds(mine, []string{"10.250.9.5"}) {
		t.Error("Holds with another ip = true")
	}

	// Our pod gone: only the other node's pod holds the IP.
	if err := mine.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Find([]string{ip}); !errors.Is(err, ErrNetnsNotFound) {
		if got != nil {
			_ = got.Close()
		}
		t.Fatalf("Find with only another node's pod: err = %v, want ErrNetnsNotFound", err)
	}
}
