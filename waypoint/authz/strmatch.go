package authz

import "strings"

// strKind is one of Istio's string match forms.
type strKind uint8

const (
	strExact    strKind = iota // "abc"
	strPrefix                  // "abc*"
	strSuffix                  // "*abc"
	strPresence                // "*"
)

// strMatch is one compiled Istio string: exact, "prefix*", "*suffix" or
// "*" (any present value).
type strMatch struct {
	kind strKind
	v    string
}

func compileStr(s string) strMatch {
	switch {
	case s == "*":
		return strMatch{kind: strPresence}
	case strings.HasPrefix(s, "*"):
		return strMatch{kind: strSuffix, v: s[1:]}
	case strings.HasSuffix(s, "*"):
		return strMatch{kind: strPrefix, v: s[:len(s)-1]}
	}
	return strMatch{kind: strExact, v: s}
}

// match reports whether s matches; present says whether the attribute
// exists at all (a present empty value still matches "*"). fold compares
// ASCII case-insensitively.
func (m *strMatch) match(s string, present, fold bool) bool {
	if !present {
		return false
	}
	switch m.kind {
	case strPresence:
		return true
	case strExact:
		if fold {
			return strings.EqualFold(s, m.v)
		}
		return s == m.v
	case strPrefix:
		if len(s) < len(m.v) {
			return false
		}
		if fold {
			return strings.EqualFold(s[:len(m.v)], m.v)
		}
		return s[:len(m.v)] == m.v
	case strSuffix:
		if len(s) < len(m.v) {
			return false
		}
		if fold {
			return strings.EqualFold(s[len(s)-len(m.v):], m.v)
		}
		return s[len(s)-len(m.v):] == m.v
	}
	return false
}

// strList is the values of one field; it matches when any value matches.
type strList []strMatch

func compileStrs(vals []string, transform func(string) string) strList {
	if len(vals) == 0 {
		return nil
	}
	out := make(strList, 0, len(vals))
	for _, v := range vals {
		if transform != nil {
			v = transform(v)
		}
		out = append(out, compileStr(v))
	}
	return out
}

func (l strList) match(s string, present, fold bool) bool {
	for i := range l {
		if l[i].match(s, present, fold) {
			return true
		}
	}
	return false
}

// matchAny reports whether any of vals matches any value of l.
func (l strList) matchAny(vals []string) bool {
	for _, v := range vals {
		if l.match(v, true, false) {
			return true
		}
	}
	return false
}

// field pairs a positive and a negative value list: it matches when the
// positive list is empty or matches, and the negative list is empty or
// does not match.
type field struct {
	in, notIn strList
}

func (f *field) set() bool { return len(f.in) > 0 || len(f.notIn) > 0 }

func (f *field) match(s string, present, fold bool) bool {
	if len(f.in) > 0 && !f.in.match(s, present, fold) {
		return false
	}
	return len(f.notIn) == 0 || !f.notIn.match(s, present, fold)
}

// stripSPIFFE drops the "spiffe://" scheme: Istio compares principals as
// "<trust-domain>/ns/<ns>/sa/<sa>".
func stripSPIFFE(s string) string { return strings.TrimPrefix(s, "spiffe://") }

// namespaceOf returns the namespace of a principal in Istio's form
// ("td/ns/<ns>/sa/<sa>"), or "" when it has none.
func namespaceOf(principal string) (string, bool) {
	i := strings.Index(principal, "/ns/")
	if i < 0 {
		return "", false
	}
	rest := principal[i+len("/ns/"):]
	j := strings.IndexByte(rest, '/')
	if j <= 0 || !strings.HasPrefix(rest[j:], "/sa/") {
		return "", false
	}
	return rest[:j], true
}
