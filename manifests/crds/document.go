package crds

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// document is one YAML document of a multi-document file, kept verbatim.
type document struct {
	raw     []byte
	kind    string // the object's kind: CustomResourceDefinition, ...
	name    string
	group   string // a CRD's spec.group
	crdKind string // a CRD's spec.names.kind
}

// header is the part of a document the assembler looks at.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
	} `json:"spec"`
}

// splitDocuments splits a multi-document YAML file on "---" separator lines
// and parses each document's header. Documents holding only comments or
// whitespace are dropped.
func splitDocuments(file string, data []byte) ([]document, error) {
	var docs []document
	var cur bytes.Buffer
	flush := func() error {
		raw := bytes.TrimSpace(cur.Bytes())
		cur.Reset()
		if len(raw) == 0 || onlyComments(raw) {
			return nil
		}
		var h header
		if err := yaml.Unmarshal(raw, &h); err != nil {
			return fmt.Errorf("%s: document %d: %w", file, len(docs)+1, err)
		}
		// A document that holds no value (an indented "---", a bare "~")
		// is as empty as a blank one.
		var v any
		if err := yaml.Unmarshal(raw, &v); err == nil && v == nil {
			return nil
		}
		docs = append(docs, document{
			raw: append([]byte(nil), raw...), kind: h.Kind, name: h.Metadata.Name,
			group: h.Spec.Group, crdKind: h.Spec.Names.Kind,
		})
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

func onlyComments(raw []byte) bool {
	for _, l := range bytes.Split(raw, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}
