package agentapi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnrollmentRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "enrollment.json")
	if _, err := ReadEnrollment(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file err = %v", err)
	}
	var nilE *Enrollment
	if nilE.NamespaceEnrolled("x") {
		t.Fatal("nil enrollment enrolls")
	}
	in := &Enrollment{Namespaces: []string{"b", "a", "b"}, Updated: time.Unix(100, 0).UTC()}
	if err := WriteEnrollment(path, in); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEnrollment(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Enrollment{Namespaces: []string{"a", "b"}, Updated: in.Updated}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if !got.NamespaceEnrolled("a") || got.NamespaceEnrolled("c") {
		t.Fatal("NamespaceEnrolled wrong")
	}
}

func TestClientUnreachable(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Add(context.Background(), PodRequest{PodName: "p", PodNamespace: "n", ContainerID: "c"})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if err := c.Healthy(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Healthy err = %v", err)
	}
}
