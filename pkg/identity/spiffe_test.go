package identity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/identity"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    identity.ID
		wantErr string
	}{
		{in: "spiffe://cluster.local/ns/default/sa/default", want: identity.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "default"}},
		{in: "spiffe://td_1-x/ns/a/sa/b.c-d", want: identity.ID{TrustDomain: "td_1-x", Namespace: "a", ServiceAccount: "b.c-d"}},
		{in: "spiffe://cluster.local/ns/" + strings.Repeat("a", 63) + "/sa/x", want: identity.ID{TrustDomain: "cluster.local", Namespace: strings.Repeat("a", 63), ServiceAccount: "x"}},
		{in: "", wantErr: "does not start with spiffe://"},
		{in: "https://cluster.local/ns/a/sa/b", wantErr: "does not start with spiffe://"},
		{in: "SPIFFE://cluster.local/ns/a/sa/b", wantErr: "does not start with spiffe://"},
		{in: "spiffe://cluster.local", wantErr: "has no path"},
		{in: "spiffe:///ns/a/sa/b", wantErr: "empty trust domain"},
		{in: "spiffe://Cluster.local/ns/a/sa/b", wantErr: "character 'C' not allowed"},
		{in: "spiffe://cluster.local:443/ns/a/sa/b", wantErr: "character ':' not allowed"},
		{in: "spiffe://user@cluster.local/ns/a/sa/b", wantErr: "character '@' not allowed"},
		{in: "spiffe://cluster.local/ns/a/sa/b/", wantErr: "path of"},
		{in: "spiffe://cluster.local/ns/a/sa", wantErr: "path of"},
		{in: "spiffe://cluster.local/ns/a/sa/b/extra", wantErr: "path of"},
		{in: "spiffe://cluster.local//ns/a/sa/b", wantErr: "path of"},
		{in: "spiffe://cluster.local/sa/b/ns/a", wantErr: "path of"},
		{in: "spiffe://cluster.local/ns//sa/b", wantErr: "namespace \"\": empty"},
		{in: "spiffe://cluster.local/ns/a/sa/", wantErr: "service account \"\": empty"},
		{in: "spiffe://cluster.local/ns/A/sa/b", wantErr: "character 'A' not allowed"},
		{in: "spiffe://cluster.local/ns/a.b/sa/c", wantErr: "character '.' not allowed"},
		{in: "spiffe://cluster.local/ns/-a/sa/c", wantErr: "must start and end"},
		{in: "spiffe://cluster.local/ns/a/sa/c..d", wantErr: "label \"\": empty"},
		{in: "spiffe://cluster.local/ns/a/sa/%41", wantErr: "character '%' not allowed"},
		{in: "spiffe://cluster.local/ns/a/sa/b?x=1", wantErr: "character '?' not allowed"},
		{in: "spiffe://cluster.local/ns/a/sa/b#f", wantErr: "character '#' not allowed"},
		{in: "spiffe://cluster.local/ns/./sa/b", wantErr: "character '.' not allowed"},
		{in: "spiffe://cluster.local/ns/" + strings.Repeat("a", 64) + "/sa/x", wantErr: "at most 63"},
		{in: "spiffe://" + strings.Repeat("a", 2048) + "/ns/a/sa/b", wantErr: "at most 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := identity.ParseID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, identity.ErrInvalidID) {
					t.Fatalf("ParseID(%q) = %v, %v; want error containing %q wrapping ErrInvalidID", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseID(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if got.String() != tt.in || got.URL().String() != tt.in {
				t.Errorf("round trip: String()=%q URL()=%q, want %q", got.String(), got.URL(), tt.in)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	if _, err := identity.NewID("cluster.local", "ns", "sa"); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.NewID("cluster.local", "ns", "Bad"); err == nil {
		t.Fatal("NewID accepted an upper-case service account")
	}
	if !(identity.ID{}).IsZero() {
		t.Fatal("zero ID not IsZero")
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"spiffe://cluster.local/ns/default/sa/default",
		"spiffe://a/ns/b/sa/c.d",
		"spiffe://cluster.local/ns/a/sa/b/",
		"spiffe://x:1/ns/a/sa/b",
		"spiffe://cluster.local/ns/%2e/sa/b",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := identity.ParseID(s)
		if err != nil {
			return
		}
		// Anything accepted is canonical: it prints back to itself, parses
		// as a URL to the same text, and validates.
		if id.String() != s {
			t.Fatalf("ParseID(%q).String() = %q", s, id.String())
		}
		if id.URL().String() != s {
			t.Fatalf("ParseID(%q).URL() = %q", s, id.URL())
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate: %v", s, err)
		}
	})
}
