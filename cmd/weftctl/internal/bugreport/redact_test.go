package bugreport

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"pem key", "a\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\nb", "a\n[REDACTED]\nb"},
		{"pkcs8 in json", `{"key":"-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"}`, `{"key":"[REDACTED]\n"}`},
		{"truncated key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE", "[REDACTED]"},
		{"jwt", "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln end", "token [REDACTED] end"},
		{"bearer", "Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]"},
		{"json token", `{"token": "s3cr3t", "name": "x"}`, `{"token": "[REDACTED]", "name": "x"}`},
		{"yaml token", "    token: s3cr3t\n", "    token: [REDACTED]\n"},
		{"certificate kept", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, string(Redact([]byte(tc.in)))); diff != "" {
				t.Errorf("Redact (-want +got):\n%s", diff)
			}
		})
	}
}

var privateKey = regexp.MustCompile(`-----BEGIN[^-\n]*PRIVATE KEY-----`)

func FuzzRedact(f *testing.F) {
	f.Add("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----")
	f.Add(`{"token":"x"}`)
	f.Add("eyJhbGciOi.eyJzdWIiOiJ4.sig")
	f.Fuzz(func(t *testing.T, s string) {
		once := Redact([]byte(s))
		if privateKey.Match(once) {
			t.Fatalf("private key header survived: %q -> %q", s, once)
		}
		if twice := Redact(once); !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
	})
}

func TestArchive(t *testing.T) {
	a := NewArchive()
	a.Add("ztunnel/node-a/config_dump.json", []byte(`{"token":"abc"}`))
	a.Add("version.json", []byte(`{}`))
	a.Fail("istiod-lite/logs.txt", errors.New("forbidden"))
	var buf bytes.Buffer
	if err := a.Write(&buf, "weft-bug-report", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	want := map[string]string{
		"weft-bug-report/errors.txt":                      "istiod-lite/logs.txt: forbidden\n",
		"weft-bug-report/version.json":                    "{}",
		"weft-bug-report/ztunnel/node-a/config_dump.json": `{"token":"[REDACTED]"}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}
