package iptables

import (
	"fmt"
	"strings"
)

// Mode is the iptables flavour: the nf_tables-backed iptables-nft or the
// legacy x_tables one. Rules must use the flavour the node already uses,
// or the two sets would both run in an order nobody chose.
type Mode string

// Modes.
const (
	ModeNFT    Mode = "nft"
	ModeLegacy Mode = "legacy"
)

// ParseMode accepts "nft", "legacy" or "" / "auto" (returned as "").
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "auto":
		return "", nil
	case string(ModeNFT), string(ModeLegacy):
		return Mode(s), nil
	}
	return "", fmt.Errorf("iptables mode %q: want nft, legacy or auto", s)
}

// countRules counts rule and chain lines in iptables-save output.
func countRules(save string) int {
	n := 0
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A ") {
			n++
		}
	}
	return n
}

// chooseMode picks the flavour holding more rules; nft wins ties, as on
// current distributions.
func chooseMode(nftSave, legacySave string) Mode {
	if countRules(legacySave) > countRules(nftSave) {
		return ModeLegacy
	}
	return ModeNFT
}
