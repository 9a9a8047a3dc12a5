package authz

import (
	"fmt"
	"strings"
)

// segKind is one segment of a path template.
type segKind uint8

const (
	segLiteral segKind = iota
	segOne             // {*}: exactly one non-empty segment
	segRest            // {**}: the rest of the path, possibly empty
)

type segment struct {
	kind segKind
	lit  string
}

// pathMatch is one compiled entry of paths/not_paths: an Istio string or,
// when it holds "{*}" or "{**}", a template.
type pathMatch struct {
	str      strMatch
	template []segment // nil when str applies
}

// isTemplate reports whether p uses a template operator.
func isTemplate(p string) bool {
	return strings.Contains(p, "{*}") || strings.Contains(p, "{**}")
}

func compilePathMatch(p string) (pathMatch, error) {
	if !isTemplate(p) {
		return pathMatch{str: compileStr(p)}, nil
	}
	segs, err := compileTemplate(p)
	if err != nil {
		return pathMatch{}, err
	}
	return pathMatch{template: segs}, nil
}

// compileTemplate checks Istio's rules for templates: the path starts with
// "/", each segment holding an operator holds only it, "*", "{" and "}"
// appear nowhere else, and "{**}" is the last segment. (Istio also allows
// literal segments after "{**}"; Weft rejects them, as its proto says.)
func compileTemplate(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path template %q must start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	for i, part := range parts {
		switch part {
		case "{*}":
			segs = append(segs, segment{kind: segOne})
		case "{**}":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("path template %q: {**} must be the last segment", p)
			}
			segs = append(segs, segment{kind: segRest})
		default:
			if strings.ContainsAny(part, "*{}") {
				return nil, fmt.Errorf("path template %q: segment %q: an operator must be a whole segment, and *, { and } are not allowed elsewhere", p, part)
			}
			segs = append(segs, segment{kind: segLiteral, lit: part})
		}
	}
	return segs, nil
}

func (m *pathMatch) match(path string) bool {
	if m.template == nil {
		return m.str.match(path, true, false)
	}
	return matchTemplate(m.template, path)
}

// matchTemplate matches a normalised path against template segments
// without allocating.
func matchTemplate(segs []segment, path string) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, s := range segs {
		if s.kind == segRest {
			return true
		}
		cur, tail, more := strings.Cut(rest, "/")
		switch s.kind {
		case segOne:
			if cur == "" {
				return false
			}
		case segLiteral:
			if cur != s.lit {
				return false
			}
		}
		if i == len(segs)-1 {
			return !more
		}
		if !more {
			return false
		}
		rest = tail
	}
	return false
}

type pathList []pathMatch

func (l pathList) match(path string) bool {
	for i := range l {
		if l[i].match(path) {
			return true
		}
	}
	return false
}
