//go:build linux

package iptables

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	goipt "github.com/coreos/go-iptables/iptables"
)

var _ Backend = (*goipt.IPTables)(nil)

// DetectMode inspects the calling thread's network namespace (the node's)
// and returns the flavour its existing rules use.
func DetectMode(ctx context.Context) Mode {
	save := func(bin string) string {
		if _, err := exec.LookPath(bin); err != nil {
			return ""
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin).Output()
		if err != nil {
			return ""
		}
		return string(out)
	}
	return chooseMode(save("iptables-nft-save"), save("iptables-legacy-save"))
}

// NewBackend returns a go-iptables IPv4 backend for mode. It runs the
// iptables-nft or iptables-legacy binary when installed, else `iptables`
// (whatever flavour it is). The backend acts on the namespace of the thread
// that calls its methods.
func NewBackend(mode Mode) (Backend, error) {
	bin := "iptables"
	switch mode {
	case ModeNFT:
		bin = "iptables-nft"
	case ModeLegacy:
		bin = "iptables-legacy"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if path, err = exec.LookPath("iptables"); err != nil {
			return nil, fmt.Errorf("find iptables binary: %w (install the iptables package)", err)
		}
	}
	ipt, err := goipt.New(goipt.IPFamily(goipt.ProtocolIPv4), goipt.Timeout(10), goipt.Path(path))
	if err != nil {
		return nil, fmt.Errorf("init iptables (%s): %w", path, err)
	}
	return ipt, nil
}
