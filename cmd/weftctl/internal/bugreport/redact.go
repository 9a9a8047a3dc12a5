package bugreport

import (
	"regexp"
)

// Redacted replaces every secret the report must not carry.
const Redacted = "[REDACTED]"

var redactions = []struct {
	re   *regexp.Regexp
	repl string
}{
	// PEM private keys of any type, with their bodies.
	{regexp.MustCompile(`(?s)-----BEGIN[^-\n]*PRIVATE KEY-----.*?(-----END[^-\n]*PRIVATE KEY-----|\z)`), Redacted},
	// JWTs (service account and bearer tokens).
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`), Redacted},
	// Authorization headers and token-ish key/values.
	{regexp.MustCompile(`(?i)(authorization:\s*(bearer|basic)\s+)\S+`), "${1}" + Redacted},
	{regexp.MustCompile(`(?i)("(?:token|password|secret|client-key-data|token-data)"\s*:\s*")[^"]*(")`), "${1}" + Redacted + "${2}"},
	{regexp.MustCompile(`(?i)((?:token|password|client-key-data):\s*)[^\s"]+`), "${1}" + Redacted},
}

// Redact removes private keys, tokens and credentials from b.
func Redact(b []byte) []byte {
	for _, r := range redactions {
		b = r.re.ReplaceAll(b, []byte(r.repl))
	}
	return b
}
