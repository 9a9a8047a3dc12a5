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
	return newBackend(mode, "iptables", goipt.ProtocolIPv4)
}

// NewBackend6 is NewBackend for IPv6: ip6tables-nft, ip6tables-legacy or
// ip6tables.
func NewBackend6(mode Mode) (Backend, error) {
	return newBackend(mode, "ip6tables", goipt.ProtocolIPv6)
}

func newBackend(mode Mode, base string, proto goipt.Protocol) (Backend, error) {
	bin := base
	switch mode {
	case ModeNFT:
		bin = base + "-nft"
	case ModeLegacy:
		bin = base + "-legacy"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if path, err = exec.LookPath(base); err != nil {
			return nil, fmt.Errorf("find %s binary: %w (install the iptables package)", base, err)
		}
	}
	ipt, err := goipt.New(goipt.IPFamily(proto), goipt.Timeout(10), goipt.Path(path))
	if err != nil {
		return nil, fmt.Errorf("init iptables (%s): %w", path, err)
	}
	return ipt, nil
}
