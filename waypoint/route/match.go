package route

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// pathKind is how a route matches the request path.
type pathKind uint8

const (
	pathAny pathKind = iota // no path match, or PathPrefix "/"
	pathPrefix
	pathExact
	pathRegex
)

// pathMatcher matches the escaped request path. For prefixes, value has no
// trailing slash, so "/foo/" and "/foo" behave the same.
type pathMatcher struct {
	kind  pathKind
	value string
	re    *regexp.Regexp
}

func compilePath(pm *l7api.PathMatch) (pathMatcher, error) {
	if pm == nil {
		return pathMatcher{kind: pathAny}, nil
	}
	v := pm.GetValue()
	switch pm.GetKind() {
	case l7api.PathMatch_PREFIX:
		if !strings.HasPrefix(v, "/") {
			return pathMatcher{}, fmt.Errorf("match.path: prefix %q must start with /", v)
		}
		if err := checkPathChars(v); err != nil {
			return pathMatcher{}, fmt.Errorf("match.path: prefix %q: %w", v, err)
		}
		v = strings.TrimRight(v, "/")
		if v == "" {
			return pathMatcher{kind: pathAny}, nil
		}
		return pathMatcher{kind: pathPrefix, value: v}, nil
	case l7api.PathMatch_EXACT:
		if !strings.HasPrefix(v, "/") {
			return pathMatcher{}, fmt.Errorf("match.path: exact %q must start with /", v)
		}
		if err := checkPathChars(v); err != nil {
			return pathMatcher{}, fmt.Errorf("match.path: exact %q: %w", v, err)
		}
		return pathMatcher{kind: pathExact, value: v}, nil
	case l7api.PathMatch_REGEX:
		re, err := compileFull(v)
		if err != nil {
			return pathMatcher{}, fmt.Errorf("match.path: regex: %w", err)
		}
		return pathMatcher{kind: pathRegex, value: v, re: re}, nil
	}
	return pathMatcher{}, fmt.Errorf("match.path: unknown kind %d", pm.GetKind())
}

// checkPathChars rejects what can never appear in a request path.
func checkPathChars(p string) error {
	if strings.ContainsAny(p, "?# \t\r\n") {
		return fmt.Errorf("contains a character not allowed in a path")
	}
	if _, err := url.PathUnescape(p); err != nil {
		return fmt.Errorf("bad percent-encoding")
	}
	return nil
}

// compileFull compiles an RE2 expression that must match a whole value.
func compileFull(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

func (m *pathMatcher) match(path string) bool {
	switch m.kind {
	case pathAny:
		return true
	case pathPrefix:
		return len(path) >= len(m.value) && path[:len(m.value)] == m.value &&
			(len(path) == len(m.value) || path[len(m.value)] == '/')
	case pathExact:
		return path == m.value
	case pathRegex:
		return m.re.MatchString(path)
	}
	return false
}

// valueMatcher matches one header or query parameter value.
type valueMatcher struct {
	name  string // canonical header key, or the exact query parameter name
	value string
	re    *regexp.Regexp
}

func (m *valueMatcher) matchValue(v string) bool {
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.value
}

func compileValueMatch(hm *l7api.HeaderMatch, header bool) (valueMatcher, error) {
	name := hm.GetName()
	if name == "" {
		return valueMatcher{}, fmt.Errorf("empty name")
	}
	m := valueMatcher{name: name, value: hm.GetValue()}
	if header {
		if !httpguts.ValidHeaderFieldName(name) {
			return valueMatcher{}, fmt.Errorf("invalid header name %q", name)
		}
		m.name = http.CanonicalHeaderKey(name)
	}
	switch hm.GetKind() {
	case l7api.HeaderMatch_EXACT:
	case l7api.HeaderMatch_REGEX:
		re, err := compileFull(hm.GetValue())
		if err != nil {
			return valueMatcher{}, fmt.Errorf("%q: regex: %w", name, err)
		}
		m.re = re
	default:
		return valueMatcher{}, fmt.Errorf("%q: unknown kind %d", name, hm.GetKind())
	}
	return m, nil
}

// matchHeader reports whether any value of the header matches. Go keeps
// the Host header in r.Host, so "Host" matches against that.
func (m *valueMatcher) matchHeader(r *http.Request) bool {
	if m.name == "Host" {
		return r.Host != "" && m.matchValue(r.Host)
	}
	for _, v := range r.Header[m.name] {
		if m.matchValue(v) {
			return true
		}
	}
	return false
}

// matchQuery reports whether any value of the query parameter matches. It
// scans the raw query without building url.Values, unescaping only what
// is escaped; pairs that fail to unescape are skipped.
func (m *valueMatcher) matchQuery(raw string) bool {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != m.name {
			if !escaped(k) {
				continue
			}
			uk, err := url.QueryUnescape(k)
			if err != nil || uk != m.name {
				continue
			}
		}
		if escaped(v) {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				continue
			}
			v = uv
		}
		if m.matchValue(v) {
			return true
		}
	}
	return false
}

func escaped(s string) bool { return strings.ContainsAny(s, "%+") }
