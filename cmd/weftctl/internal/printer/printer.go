package printer

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Format is an output format selected with -o.
type Format string

// The output formats.
const (
	Table Format = "table"
	Wide  Format = "wide"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// ParseFormat validates s; the empty string is Table.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case "", Table:
		return Table, nil
	case Wide, JSON, YAML:
		return f, nil
	}
	return "", fmt.Errorf("unknown output format %q: use one of table, wide, json, yaml", s)
}

// Structured reports whether f prints the object rather than a table.
func (f Format) Structured() bool { return f == JSON || f == YAML }

// TableData is a table: a header and rows of the same width. Wide columns
// are appended only in wide output.
type TableData struct {
	Header     []string
	WideHeader []string
	Rows       [][]string
	WideRows   [][]string
}

// WriteTable writes t aligned in columns, with wide columns when wide.
func WriteTable(w io.Writer, t TableData, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := t.Header
	if wide {
		header = append(append([]string{}, header...), t.WideHeader...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i, r := range t.Rows {
		cells := r
		if wide && i < len(t.WideRows) {
			cells = append(append([]string{}, r...), t.WideRows[i]...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// WriteObject writes v as indented JSON or as YAML.
func WriteObject(w io.Writer, f Format, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if f == YAML {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("encode output as yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Write prints t for table formats and v for structured ones.
func Write(w io.Writer, f Format, t TableData, v any) error {
	if f.Structured() {
		return WriteObject(w, f, v)
	}
	return WriteTable(w, t, f == Wide)
}
