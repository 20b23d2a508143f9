// Package hostglob matches host names against shell-style patterns. The
// proxy uses it to choose which CONNECT targets it intercepts (mitm.hosts)
// and which it tunnels untouched (mitm.bypass): operators write
// "*.example.com" as they would in NO_PROXY or a Squid ACL.
package hostglob

import (
	"fmt"
	"path"
	"strings"
)

// List is a parsed list of patterns. The zero value matches nothing.
type List struct {
	pats []string // lower case, checked by Parse
}

// Parse checks and normalises patterns: lower case, ASCII, no port, no
// scheme or path.
// A pattern is a host name or IP literal in which '*' matches any run of
// characters (dots included: "*.example.com" matches "a.b.example.com",
// not "example.com"), '?' one character and '[...]' one of a class, as in
// path.Match.
func Parse(patterns []string) (List, error) {
	l := List{pats: make([]string, 0, len(patterns))}
	for _, p := range patterns {
		q := normalise(p)
		switch {
		case q == "":
			return List{}, fmt.Errorf("hostglob: empty pattern")
		case strings.ContainsAny(q, "/ \t"):
			return List{}, fmt.Errorf("hostglob: %q: a pattern names hosts, not URLs", p)
		case strings.Count(q, ":") == 1: // one colon: host:port (IPv6 has more)
			return List{}, fmt.Errorf("hostglob: %q: a pattern names hosts without a port", p)
		case !isASCII(q):
			return List{}, fmt.Errorf("hostglob: %q: write international names in punycode (xn--...)", p)
		}
		if _, err := path.Match(q, ""); err != nil {
			return List{}, fmt.Errorf("hostglob: %q: %w", p, err)
		}
		l.pats = append(l.pats, q)
	}
	return l, nil
}

// Match reports whether host (a name or IP literal, without port) matches
// one of the patterns. Case and a trailing dot do not matter.
func (l List) Match(host string) bool {
	h := normalise(host)
	for _, p := range l.pats {
		if ok, _ := path.Match(p, h); ok { // patterns were checked by Parse
			return true
		}
	}
	return false
}

// Len is the number of patterns.
func (l List) Len() int { return len(l.pats) }

// normalise lower-cases the ASCII letters of s (host names are ASCII;
// international names travel as punycode) and drops surrounding space and a
// trailing dot (the root label: "example.com." is "example.com").
func normalise(s string) string {
	b := []byte(strings.TrimSuffix(strings.TrimSpace(s), "."))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
