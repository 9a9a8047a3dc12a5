package route

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// pathRewrite is a compiled PathRewrite. For prefix replacement, value has
// no trailing slash.
type pathRewrite struct {
	full   bool
	prefix bool
	value  string
}

func compilePathRewrite(pr *l7api.PathRewrite, pm pathMatcher) (pathRewrite, error) {
	switch k := pr.GetKind().(type) {
	case nil:
		return pathRewrite{}, nil
	case *l7api.PathRewrite_ReplaceFullPath:
		v := k.ReplaceFullPath
		if !strings.HasPrefix(v, "/") {
			return pathRewrite{}, fmt.Errorf("path.replace_full_path %q must start with /", v)
		}
		if err := checkPathChars(v); err != nil {
			return pathRewrite{}, fmt.Errorf("path.replace_full_path %q: %w", v, err)
		}
		return pathRewrite{full: true, value: v}, nil
	case *l7api.PathRewrite_ReplacePrefixMatch:
		v := k.ReplacePrefixMatch
		if v != "" && !strings.HasPrefix(v, "/") {
			return pathRewrite{}, fmt.Errorf("path.replace_prefix_match %q must be empty or start with /", v)
		}
		if err := checkPathChars(v); err != nil {
			return pathRewrite{}, fmt.Errorf("path.replace_prefix_match %q: %w", v, err)
		}
		if pm.kind != pathPrefix && pm.kind != pathAny {
			return pathRewrite{}, fmt.Errorf("path.replace_prefix_match needs a PathPrefix match")
		}
		return pathRewrite{prefix: true, value: strings.TrimRight(v, "/")}, nil
	}
	return pathRewrite{}, fmt.Errorf("path: unknown rewrite kind")
}

// apply rewrites the escaped path p, which matched the route's prefix
// matchedPrefix (without trailing slash; "" for "/"), with Gateway API's
// slash rules: the replacement's trailing slash is dropped, the rest of
// the path after the prefix (empty or starting with "/") is appended, and
// an empty result becomes "/". For example with prefix "/foo":
// "/foo/bar" → "/xyz/bar" (replacement "/xyz" or "/xyz/"), "/foo" →
// "/xyz", "/foo/" → "/xyz/", and with an empty replacement "/foo/bar" →
// "/bar", "/foo" → "/".
func (pr *pathRewrite) apply(p, matchedPrefix string) string {
	switch {
	case pr.full:
		return pr.value
	case pr.prefix:
		rest := ""
		if len(p) >= len(matchedPrefix) {
			rest = p[len(matchedPrefix):]
		}
		out := pr.value + rest
		if out == "" {
			return "/"
		}
		return out
	}
	return p
}

func (pr *pathRewrite) set() bool { return pr.full || pr.prefix }

// redirect is a compiled Redirect.
type redirect struct {
	scheme   string
	hostname string
	port     uint16
	path     pathRewrite
	status   int
}

func compileRedirect(rd *l7api.Redirect, pm pathMatcher) (*redirect, error) {
	out := &redirect{scheme: strings.ToLower(rd.GetScheme()), hostname: rd.GetHostname()}
	switch out.scheme {
	case "", "http", "https":
	default:
		return nil, fmt.Errorf("redirect.scheme %q: want http or https", rd.GetScheme())
	}
	if err := checkHostname(out.hostname); err != nil {
		return nil, fmt.Errorf("redirect.hostname: %w", err)
	}
	if rd.GetPort() > 65535 {
		return nil, fmt.Errorf("redirect.port %d out of range", rd.GetPort())
	}
	out.port = uint16(rd.GetPort())
	pr, err := compilePathRewrite(rd.GetPath(), pm)
	if err != nil {
		return nil, fmt.Errorf("redirect.%w", err)
	}
	out.path = pr
	switch s := rd.GetStatusCode(); s {
	case 0:
		out.status = http.StatusFound
	case 301, 302, 303, 307, 308:
		out.status = int(s)
	default:
		return nil, fmt.Errorf("redirect.status_code %d: want 301, 302, 303, 307 or 308", s)
	}
	return out, nil
}

// checkHostname accepts empty (keep) or a plausible host name or IP
// address without port.
func checkHostname(h string) error {
	if h == "" {
		return nil
	}
	if strings.ContainsAny(h, "/?#@ \t\r\n[]") {
		return fmt.Errorf("%q is not a host name", h)
	}
	if strings.Contains(h, ":") && net.ParseIP(h) == nil {
		return fmt.Errorf("%q must not carry a port", h)
	}
	return nil
}

// location builds the absolute redirect target for r, received on Service
// port listenerPort. Gateway API port rules: an explicit port wins; else a
// scheme given by the redirect implies its well-known port; else the
// listener port is kept. Ports 80 for http and 443 for https are left out.
// The request's Host (else the service hostname) is kept unless the
// redirect names a hostname.
func (rd *redirect) location(r *http.Request, svcHost string, listenerPort uint16, matchedPrefix string) string {
	scheme := rd.scheme
	port := rd.port
	if port == 0 {
		switch scheme {
		case "http":
			port = 80
		case "https":
			port = 443
		default:
			port = listenerPort
		}
	}
	if scheme == "" {
		scheme = requestScheme(r)
	}
	host := rd.hostname
	if host == "" {
		host = hostOnly(r.Host)
		if host == "" && r.URL != nil {
			host = hostOnly(r.URL.Host)
		}
		if host == "" {
			host = svcHost
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != 0 && (scheme != "http" || port != 80) && (scheme != "https" || port != 443) {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(port)))
	}
	p := requestPath(r)
	if rd.path.set() {
		p = rd.path.apply(p, matchedPrefix)
	}
	b.WriteString(p)
	if r.URL != nil && r.URL.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return b.String()
}

func requestScheme(r *http.Request) string {
	if r.URL != nil && r.URL.Scheme != "" {
		return strings.ToLower(r.URL.Scheme)
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// hostOnly strips the port and IPv6 brackets from an authority.
func hostOnly(authority string) string {
	if h, _, err := net.SplitHostPort(authority); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(authority, "["), "]")
}

// requestPath is the escaped path routes match on; "" (an authority-form
// or asterisk target) reads as "/".
func requestPath(r *http.Request) string {
	if r.URL == nil {
		return "/"
	}
	p := r.URL.EscapedPath()
	if p == "" || p[0] != '/' {
		return "/"
	}
	return p
}
