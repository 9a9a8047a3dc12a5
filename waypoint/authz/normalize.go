package authz

import "strings"

// NormalizePath returns the escaped path p (as on the wire; anything from
// '?' or '#' on is dropped, and so is the scheme and authority of an
// absolute-form target) normalised as Evaluate matches it:
//
//   - percent-encoded unreserved characters (letters, digits, "-._~") are
//     decoded and the hex digits of other escapes upper-cased ("%2f" →
//     "%2F"); encoded slashes and backslashes stay encoded; a '%' that
//     starts no escape becomes "%25";
//   - a backslash becomes a slash, and runs of slashes become one;
//   - "." and ".." segments are resolved (never above the root);
//   - an empty path, or one not starting with "/", gets a leading "/".
//
// The waypoint should forward (and route) the normalised path so the
// backend sees what authorization saw. It returns p itself, without
// allocating, when nothing changes.
func NormalizePath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		// An absolute-form target: drop "scheme://authority".
		if i := strings.Index(p, "://"); i >= 0 {
			p = p[i+3:]
			j := strings.IndexByte(p, '/')
			if j < 0 {
				return "/"
			}
			p = p[j:]
		}
	}
	if p[0] != '/' {
		p = "/" + p
	}
	if !needsNormalizing(p) {
		return p
	}
	return resolveDots(mergeSlashes(decodeUnreserved(p)))
}

// needsNormalizing reports whether p holds an escape, a backslash, an
// empty segment or a dot segment.
func needsNormalizing(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', '\\':
			return true
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return true
			}
			if i+1 < len(p) && p[i+1] == '.' {
				end := i + 2
				if end < len(p) && p[end] == '.' {
					end++
				}
				if end == len(p) || p[end] == '/' {
					return true
				}
			}
		}
	}
	return false
}

func decodeUnreserved(p string) string {
	if !strings.ContainsAny(p, "%\\") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			b.WriteByte('/')
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteByte(upper(p[i+1]))
				b.WriteByte(upper(p[i+2]))
			}
			i += 2
		case c == '%':
			// A '%' that starts no escape is encoded, so that no escape
			// can form from it and the next character once an escape
			// after it is decoded ("%2%44" → "%252D", not "%2D").
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// resolveDots removes "." and ".." segments from a path that starts with
// "/" and has no empty segments except a trailing one.
func resolveDots(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".", "":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	res := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		res += "/"
	}
	return res
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
