package log

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestComponentLevels(t *testing.T) {
	var buf bytes.Buffer
	root, err := New(Options{Format: FormatJSON, Level: "info", Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	a, b := root.Logger("proxy"), root.Logger("xds")
	a.Debug("hidden")
	a.Info("shown", "conn_id", 7)
	if err := root.SetLevel("xds", "debug"); err != nil {
		t.Fatal(err)
	}
	b.Debug("now shown")
	a.Debug("still hidden")
	if err := root.SetLevel("", "error"); err != nil {
		t.Fatal(err)
	}
	a.Warn("hidden by default level")
	b.Debug("xds keeps its own level")

	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		msgs = append(msgs, rec[ComponentKey].(string)+":"+rec["msg"].(string))
	}
	want := []string{"proxy:shown", "xds:now shown", "xds:xds keeps its own level"}
	if strings.Join(msgs, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", msgs, want)
	}
	if got := root.Levels(); got[""] != "error" || got["xds"] != "debug" {
		t.Fatalf("levels = %v", got)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Format: "xml"}, {Level: "loud"}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
	root, _ := New(Options{})
	if err := root.SetLevel("x", "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("SetLevel bad level: err = %v", err)
	}
}

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	root, err := New(Options{Format: FormatText, Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	root.Logger("cni").Info("hello", "pod", "a/b")
	if got := buf.String(); !strings.Contains(got, "component=cni") || !strings.Contains(got, "pod=a/b") {
		t.Fatalf("text output %q", got)
	}
}
