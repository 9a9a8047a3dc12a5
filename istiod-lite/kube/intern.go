package kube

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unique"
)

// maxInterned bounds each interning table; when one fills up it starts
// afresh (maps handed out stay valid, they are just no longer shared with
// later pods).
const maxInterned = 4096

// mapInterner shares one read-only map among objects whose maps are equal:
// the replicas of a workload carry the same labels and the same kept
// annotations, and 5,000 pods' single-entry maps are otherwise about
// 1.5 MB each for labels and annotations. It is safe for concurrent use.
// Maps it returns must never be modified.
type mapInterner struct {
	mu    sync.Mutex
	table map[string]map[string]string
}

// intern returns a map equal to m, shared with earlier callers when one
// was seen; nil or empty m gives nil.
func (in *mapInterner) intern(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	k := canonical(m)
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.table[k]; ok {
		return s
	}
	if in.table == nil || len(in.table) >= maxInterned {
		in.table = make(map[string]map[string]string, 64)
	}
	in.table[k] = m
	return m
}

// canonical encodes m unambiguously: sorted keys, each key and value
// prefixed with its length.
func canonical(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		for _, s := range [2]string{k, m[k]} {
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
			b.WriteString(s)
		}
	}
	return b.String()
}

// podLabels and podAnnotations intern pods' labels and kept annotations.
var podLabels, podAnnotations mapInterner

// internString shares equal strings (namespaces, node names, service
// accounts) among pods.
func internString(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}
