package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCounter(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "inet", "name": "leaked", "table": "weft_plaintext", "handle": 1, "packets": 7, "bytes": 900}}]}`
	got, err := parseCounter([]byte(js))
	if err != nil || got != 7 {
		t.Fatalf("parseCounter = %d, %v; want 7", got, err)
	}
	if _, err := parseCounter([]byte(`{"nftables": []}`)); err == nil {
		t.Error("no counter: want an error")
	}
}

// TestPlaintextRulesParse checks the detector's script with nft's own
// parser (-c: check only, nothing is installed).
func TestPlaintextRulesParse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nft -c needs root")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft is not installed")
	}
	script := strings.Replace(plaintextRules(), "delete table inet "+plaintextTable+"\n", "", 1)
	f := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nft, "-c", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("nft rejects the detector's rules: %v\n%s\n%s", err, out, script)
	}
}
