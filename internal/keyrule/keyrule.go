// Package keyrule decides how the cache keys a request URL (issue 10):
// which query parameters are signatures to leave out of the key (S3, GCS,
// CloudFront, Azure SAS, Docker Hub's CDN), which paths name their content
// by digest (one entry across hosts, repositories and signatures), and
// which paths name files that never change (storable and resumable without
// validators). The operator's rules from the config are tried first.
//
// It is pure: values in, values out; no I/O, no logging, no clock. It
// imports the standard library, internal/hostglob, and proxy/policy for
// CacheKey, so that a URL no rule touches keeps the key it has always had
// and existing caches stay valid. proxy/policy must never import keyrule
// (it sits below it); policy.CacheKey stays the one definition of a URL key.
package keyrule

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// Key namespaces. A URL key is policy.CacheKey's absolute http or https
// URL; the prefixes below are not schemes the proxy caches, so no key of
// one kind can equal a key of another.
const (
	// SignedPrefix starts the key of a URL whose signature was stripped.
	// Its own namespace keeps a signature a permission (issue 10, point 2):
	// an unsigned request for the same path must not find bytes that were
	// fetched under someone's signature, since nothing would check it.
	SignedPrefix = "signed:"
	// DigestPrefix starts the key of content named by digest
	// ("digest:sha256:<hex>"), shared by every URL naming that digest.
	DigestPrefix = "digest:"
	// TemplatePrefix starts the key an operator rule's key template makes.
	TemplatePrefix = "key:"
)

// Result is how the cache keys one URL.
type Result struct {
	// Key is the cache key. For a URL no rule changes it is
	// policy.CacheKey(u).
	Key string
	// Rule names the rules that matched, comma-separated in the order
	// they applied ("s3-signature,docker-cdn-digest"); "" if none. The
	// proxy sends it as X-Cache-Key-Rule.
	Rule string
	// Signed is set when signature parameters were left out of the key:
	// the proxy must have the upstream accept this request's own URL
	// before it serves stored bytes (a 304 or 206 to a conditional).
	Signed bool
	// Stripped names the query parameters left out of the key, in the
	// order they appeared (for logs).
	Stripped []string
	// Digest names the content when the path does; zero otherwise. The
	// body must hash to it before a client gets its last byte.
	Digest Digest
	// Immutable is set when the path names a file that never changes:
	// a 200 or 206 for it is storable and resumable without validators
	// and never revalidated. It says nothing of redirects or errors.
	Immutable bool
}

// Digest is a content digest: an algorithm and its lower-case hex value.
// The zero value means none.
type Digest struct {
	// Algorithm is "sha256" or "sha512".
	Algorithm string
	// Hex is the digest in lower-case hex (64 or 128 digits).
	Hex string
}

// IsZero reports whether d is no digest.
func (d Digest) IsZero() bool { return d == Digest{} }

// String returns "algorithm:hex", or "" for the zero Digest.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Algorithm + ":" + d.Hex
}

// digestHexLen is the hex length of a digest of alg, 0 for an algorithm
// keyrule does not trust. Weaker hashes (MD5, SHA-1: Debian's by-hash has
// both) are left out on purpose: a digest key is shared across hosts, so a
// collision would poison it.
func digestHexLen(alg string) int {
	switch alg {
	case "sha256":
		return 64
	case "sha512":
		return 128
	}
	return 0
}

// ParseDigest parses "sha256:<64 hex>" or "sha512:<128 hex>"; the hex may
// be in either case and comes back lower-case.
func ParseDigest(s string) (Digest, error) {
	alg, hex, ok := strings.Cut(s, ":")
	n := digestHexLen(alg)
	switch {
	case !ok || n == 0:
		return Digest{}, fmt.Errorf("keyrule: digest %q: want sha256:<hex> or sha512:<hex>", s)
	case len(hex) != n || !isHex(hex):
		return Digest{}, fmt.Errorf("keyrule: digest %q: want %d hex digits after %s:", s, n, alg)
	}
	return Digest{Algorithm: alg, Hex: strings.ToLower(hex)}, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Rules is a compiled set of key rules: the operator's, tried first in
// order, then the enabled built-ins. A nil *Rules applies none: every key
// is policy.CacheKey's. Safe for concurrent use (it is never modified).
type Rules struct {
	ops   []opRule
	sigs  []sigRule
	paths []pathRule
}

// Key returns how the cache keys u. The first operator rule that matches
// decides alone; when none does, every built-in signature rule whose
// signature is present strips its parameters, and the first built-in path
// rule that matches gives the digest or immutability.
func (r *Rules) Key(u *url.URL) Result {
	if r == nil {
		return Result{Key: policy.CacheKey(u)}
	}
	q := parseQuery(u.RawQuery)
	for _, o := range r.ops {
		if res, ok := o.apply(u, q); ok {
			return res
		}
	}
	return r.builtin(u, q)
}

// builtin applies the built-in rules to u, whose query is q.
func (r *Rules) builtin(u *url.URL, q []param) Result {
	var res Result
	var names []string
	for _, s := range r.sigs {
		var stripped []string
		if q, stripped = s.strip(u.Hostname(), q); len(stripped) > 0 {
			res.Stripped = append(res.Stripped, stripped...)
			names = append(names, s.name)
		}
	}
	path := escapedPath(u)
	for _, p := range r.paths {
		if d, ok := p.match(path); ok {
			res.Digest, res.Immutable = d, true
			names = append(names, p.name)
			break
		}
	}
	res.Signed = len(res.Stripped) > 0
	res.Rule = strings.Join(names, ",")
	res.Key = composeKey(u, q, res, "", false)
	return res
}

// composeKey builds the key of u once the rules have decided: kept is the
// query left in the key, tmpl the expansion of an operator's key template
// (hasTmpl set). A digest is the key only when no query is left: a query
// the rules do not know might select other bytes, and then the URL key
// keeps the entry apart (the digest still checks the body). Every other
// key keeps kept verbatim, in order, so two URLs whose kept queries differ
// never share a key.
func composeKey(u *url.URL, kept []param, res Result, tmpl string, hasTmpl bool) string {
	if !res.Digest.IsZero() && len(kept) == 0 {
		return DigestPrefix + res.Digest.String()
	}
	var key string
	switch {
	case hasTmpl:
		key = TemplatePrefix + tmpl
		if len(kept) > 0 {
			key += "?" + joinQuery(kept)
		}
	case len(res.Stripped) == 0:
		key = policy.CacheKey(u)
	default:
		k := *u
		k.RawQuery, k.ForceQuery = joinQuery(kept), false
		key = policy.CacheKey(&k)
	}
	if res.Signed {
		key = SignedPrefix + key
	}
	return key
}

// escapedPath is u's path as sent, percent-escapes kept, "/" when empty:
// what rule patterns match. Escapes are not undone, so an escaped "/" or
// ":" never makes a path look like another.
func escapedPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// param is one '&'-separated field of a raw query: raw as sent, name its
// unescaped name (raw's name part when it does not unescape).
type param struct {
	raw, name string
}

// parseQuery splits a raw query into its fields, keeping each verbatim.
func parseQuery(raw string) []param {
	if raw == "" {
		return nil
	}
	fields := strings.Split(raw, "&")
	ps := make([]param, len(fields))
	for i, f := range fields {
		name, _, _ := strings.Cut(f, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		ps[i] = param{raw: f, name: name}
	}
	return ps
}

// joinQuery is the raw query of ps.
func joinQuery(ps []param) string {
	raws := make([]string, len(ps))
	for i, p := range ps {
		raws[i] = p.raw
	}
	return strings.Join(raws, "&")
}

// removeParams returns ps without the params drop selects, and the names
// of those it removed.
func removeParams(ps []param, drop func(name string) bool) (kept []param, removed []string) {
	for _, p := range ps {
		if drop(p.name) {
			removed = append(removed, p.name)
		} else {
			kept = append(kept, p)
		}
	}
	return kept, removed
}
