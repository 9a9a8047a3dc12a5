package crds

import (
	"strings"
	"testing"
)

// FuzzSplitDocuments checks that splitting never panics, keeps no empty
// document, and that every kept document re-splits to itself.
func FuzzSplitDocuments(f *testing.F) {
	f.Add("---\n" + crdA + "---\n# c\n---\n" + notCRD)
	f.Add("a: 1\n---  \nb: [1\n")
	f.Add("--- \n---\n\n")
	f.Add("kind: CustomResourceDefinition\nmetadata: {name: x}\nspec: {group: g, names: {kind: K}}\n")
	f.Fuzz(func(t *testing.T, in string) {
		docs, err := splitDocuments("fuzz.yaml", []byte(in))
		if err != nil {
			return
		}
		for _, d := range docs {
			if strings.TrimSpace(string(d.raw)) == "" || onlyComments(d.raw) {
				t.Fatalf("kept an empty document %q", d.raw)
			}
			again, err := splitDocuments("again.yaml", d.raw)
			if err != nil || len(again) != 1 || again[0].name != d.name || again[0].kind != d.kind {
				t.Fatalf("document %q does not re-split to itself: %v %+v", d.raw, err, again)
			}
		}
	})
}
