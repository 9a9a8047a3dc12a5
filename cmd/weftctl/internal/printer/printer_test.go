package printer

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrite(t *testing.T) {
	tab := TableData{Header: []string{"A", "LONG HEADER"}, WideHeader: []string{"W"}, Rows: [][]string{{"x", "y"}, {"longer", "z"}}, WideRows: [][]string{{"1"}, {"2"}}}
	obj := map[string]any{"a": []string{"x"}}
	for _, tc := range []struct {
		format Format
		want   string
	}{
		{Table, "A        LONG HEADER\nx        y\nlonger   z\n"},
		{Wide, "A        LONG HEADER   W\nx        y             1\nlonger   z             2\n"},
		{JSON, "{\n  \"a\": [\n    \"x\"\n  ]\n}\n"},
		{YAML, "a:\n- x\n"},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, tc.format, tab, obj); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.format, diff)
		}
	}
	for in, want := range map[string]Format{"": Table, "WIDE": Wide, "json": JSON, "yaml": YAML} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) succeeded")
	}
}
