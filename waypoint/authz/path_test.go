package authz

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPathTemplate(t *testing.T) {
	tests := []struct {
		template string
		path     string
		want     bool
	}{
		// Istio's documented examples (those Weft accepts).
		{"/foo/{*}", "/foo/bar", true},
		{"/foo/{*}", "/foo/bar/baz", false},
		{"/foo/{*}/bar/{**}", "/foo/buzz/bar/", true},
		{"/foo/{*}/bar/{**}", "/foo/buzz/bar/baz", true},
		// {*} is exactly one non-empty segment.
		{"/foo/{*}", "/foo/", false},
		{"/foo/{*}", "/foo", false},
		{"/foo/{*}", "/foo/a%2Fb", true},
		{"/{*}", "/x", true},
		{"/{*}", "/", false},
		{"/{*}/{*}", "/a/b", true},
		{"/{*}/{*}", "/a/b/", false},
		{"/{*}/x", "/a/x", true},
		{"/{*}/x", "/a/y", false},
		{"/foo/{*}/", "/foo/bar/", true},
		{"/foo/{*}/", "/foo/bar", false},
		// {**} is the rest, possibly empty, after the slash.
		{"/foo/{**}", "/foo/", true},
		{"/foo/{**}", "/foo/a/b/c", true},
		{"/foo/{**}", "/foo", false},
		{"/foo/{**}", "/foobar", false},
		{"/{**}", "/", true},
		{"/{**}", "/anything/at/all", true},
		{"/api/{*}/v1/{**}", "/api/x/v1/y/z", true},
		{"/api/{*}/v1/{**}", "/api/x/v2/y", false},
		// Literal segments compare exactly (case-sensitive).
		{"/Foo/{*}", "/foo/x", false},
		{"/a/{*}", "", false},
		{"/a/{*}", "a/x", false},
	}
	for _, tc := range tests {
		t.Run(tc.template+" "+tc.path, func(t *testing.T) {
			m, err := compilePathMatch(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.match(tc.path); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
			if got := refTemplate(t, tc.template).MatchString(tc.path); got != tc.want {
				t.Errorf("reference disagrees: %v", got)
			}
		})
	}
}

// refTemplate is an independent regexp reading of a template: "{*}" is
// [^/]+, "{**}" is .* (only last), literals are quoted.
func refTemplate(t testing.TB, template string) *regexp.Regexp {
	parts := strings.Split(template[1:], "/")
	var b strings.Builder
	b.WriteString("^")
	for _, p := range parts {
		b.WriteString("/")
		switch p {
		case "{*}":
			b.WriteString("[^/]+")
		case "{**}":
			b.WriteString("(?s:.*)")
		default:
			b.WriteString(regexp.QuoteMeta(p))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestNormalizePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"/a/b?x=1", "/a/b"},
		{"/a/b#frag", "/a/b"},
		{"/a?x=/../b", "/a"},
		{"a/b", "/a/b"},
		{"//a///b//", "/a/b/"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/../../a", "/a"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a/..", "/"},
		{"/.", "/"},
		{"/..", "/"},
		{"/a/.b/..c/...", "/a/.b/..c/..."},
		{"/%61%62c", "/abc"},
		{"/%7euser/%2D", "/~user/-"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb/../c", "/c"},
		{"/a%5cb", "/a%5Cb"},
		{"/a\\b\\..\\c", "/a/c"},
		{"/%2e%2E/x", "/x"},
		{"/a/%2e%2e/b", "/b"},
		{"/%zz/%4", "/%25zz/%254"},
		{"%2%44", "/%252D"},
		{"/a%20b", "/a%20b"},
		{"/%25%32%66", "/%252f"},
		{"http://svc.demo:80/admin/../x?q", "/x"},
		{"http://svc.demo", "/"},
		{"*", "/*"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := NormalizePath(tc.in)
			if got != tc.want {
				t.Errorf("NormalizePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := NormalizePath(got); again != got {
				t.Errorf("not idempotent: %q → %q", got, again)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { _ = NormalizePath("/api/v1/items/42?x=1") }); n != 0 {
		t.Errorf("NormalizePath of a clean path allocates %v times", n)
	}
}

// FuzzPathTemplate checks that template matching never panics and agrees
// with an independent regexp reading of the template, and that
// NormalizePath is idempotent.
func FuzzPathTemplate(f *testing.F) {
	seeds := [][2]string{
		{"/foo/{*}", "/foo/bar"},
		{"/foo/{*}/bar/{**}", "/foo/buzz/bar/baz"},
		{"/{**}", "/"},
		{"/a/{*}/", "/a//"},
		{"/{*}/{*}", "//"},
		{"/api/{*}", "/api/%2F/../x"},
		{"/{**}/x", "/a/x"},
		{"/x/{*}.txt", "/x/a.txt"},
		{"/x", "%2%44"}, // a stray %, then an escape that decodes to a hex digit
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, template, p string) {
		norm := NormalizePath(p)
		if NormalizePath(norm) != norm {
			t.Fatalf("NormalizePath not idempotent on %q: %q", p, norm)
		}
		if !strings.HasPrefix(norm, "/") {
			t.Fatalf("NormalizePath(%q) = %q lacks a leading slash", p, norm)
		}
		if !isTemplate(template) {
			return
		}
		m, err := compilePathMatch(template)
		if err != nil {
			return
		}
		for _, path := range []string{p, norm} {
			got := m.match(path)
			if got != m.match(path) {
				t.Fatalf("template %q path %q: inconsistent results", template, path)
			}
			if !utf8.ValidString(template) || !utf8.ValidString(path) {
				continue // the regexp reference reads runes, not bytes
			}
			if want := refTemplate(t, template).MatchString(path); got != want {
				t.Fatalf("template %q path %q: match %v, reference %v", template, path, got, want)
			}
		}
	})
}
