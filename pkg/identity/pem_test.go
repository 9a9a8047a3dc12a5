package identity_test

import (
	"encoding/pem"
	"testing"
)

func mustDecode(t testing.TB, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}
