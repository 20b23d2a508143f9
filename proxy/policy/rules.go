package policy

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheControl is a parsed Cache-Control field: directive name (lower case)
// to argument ("" when none). RFC 9111 §5.2.
type cacheControl map[string]string

// maxDirectives bounds how much of a hostile Cache-Control we look at.
const maxDirectives = 32

func parseCacheControl(h http.Header) cacheControl {
	cc := cacheControl{}
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			if len(cc) >= maxDirectives {
				return cc
			}
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			name = strings.ToLower(name) // no space around "=" (RFC 9111 §5.2)
			if _, dup := cc[name]; name == "" || dup {
				continue // RFC 9111 §4.2.1: a repeated directive counts once, the first
			}
			cc[name] = strings.Trim(strings.TrimSpace(arg), `"`)
		}
	}
	return cc
}

func (cc cacheControl) has(name string) bool {
	_, ok := cc[name]
	return ok
}

// seconds returns a delta-seconds argument (RFC 9111 §1.2.2); ok is false
// when the directive is absent or malformed.
func (cc cacheControl) seconds(name string) (time.Duration, bool) {
	arg, ok := cc[name]
	if !ok {
		return 0, false
	}
	return deltaSeconds(arg)
}

// maxDelta is the largest delta-seconds value we represent; RFC 9111
// §1.2.2 makes every larger one mean 2^31 seconds.
const maxDelta = (1<<31 - 1) * time.Second

// deltaSeconds parses a delta-seconds value (RFC 9111 §1.2.2: 1*DIGIT),
// capping overflow at maxDelta.
func deltaSeconds(s string) (time.Duration, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || time.Duration(n) > maxDelta/time.Second {
		return maxDelta, true // only digits: ParseInt fails only by overflow
	}
	return time.Duration(n) * time.Second, true
}

// RequestUsesCache reports whether a client request may be answered from or
// stored in the cache at all: GET only, and not no-store (RFC 9111 §3, §5.2.1.5).
func RequestUsesCache(r *http.Request) bool {
	return r.Method == http.MethodGet && !parseCacheControl(r.Header).has("no-store")
}

// Storable reports whether a response may be stored by a shared cache
// (RFC 9111 §3), and is worth storing: 200 or 206, with a known length, and
// something to decide freshness or to revalidate with. NotStorableReason
// says why not.
func Storable(req *http.Request, resp *http.Response) bool {
	return NotStorableReason(req, resp) == ""
}

// StorableImmutable is Storable for a resource a key rule names immutable
// (it never changes): it needs nothing to decide freshness or revalidate
// with, as it is always fresh, but every other rule holds.
func StorableImmutable(req *http.Request, resp *http.Response) bool {
	r := NotStorableReason(req, resp)
	return r == "" || r == ReasonNoValidator
}

func hasVaryStar(h http.Header) bool {
	for _, name := range varyNames(h) {
		if name == "*" {
			return true
		}
	}
	return false
}

// varyNames lists the request fields a response varies on (RFC 9111 §4.1).
func varyNames(h http.Header) []string {
	var names []string
	for _, line := range h.Values("Vary") {
		for _, n := range strings.Split(line, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, http.CanonicalHeaderKey(n))
			}
		}
	}
	return names
}

// SelectingHeader returns the request's values of the fields that resp
// varies on, to store with the entry.
func SelectingHeader(req http.Header, resp http.Header) map[string][]string {
	names := varyNames(resp)
	if len(names) == 0 {
		return nil
	}
	sel := make(map[string][]string, len(names))
	for _, n := range names {
		sel[n] = normalizeValues(req.Values(n))
	}
	return sel
}

// VariantMatches reports whether a stored variant may answer req: every
// field named by Vary has the same normalized value (RFC 9111 §4.1).
func VariantMatches(stored http.Header, sel map[string][]string, req http.Header) bool {
	for _, n := range varyNames(stored) {
		if strings.Join(sel[n], ",") != strings.Join(normalizeValues(req.Values(n)), ",") {
			return false
		}
	}
	return true
}

// normalizeValues folds a field's lines into one list without whitespace
// around elements (RFC 9111 §4.1 allows this normalization).
func normalizeValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// Validator is what identifies one version of a representation.
type Validator struct {
	etag         string    // as sent, quotes included; "" when none
	weak         bool      // etag is W/
	lastModified time.Time // zero when none
	date         time.Time // Date of the response that carried them
	// encoding and ctype are Content-Encoding and Content-Type as sent
	// ("" when absent): representation metadata (RFC 9110 §8.3, §8.4),
	// which the bytes of a range are bytes of.
	encoding, ctype string
	// immutable is set for a resource a key rule says never changes
	// (Immutable).
	immutable bool
}

func ValidatorOf(h http.Header) Validator {
	v := Validator{etag: strings.TrimSpace(h.Get("ETag")), encoding: h.Get("Content-Encoding"), ctype: h.Get("Content-Type")}
	v.weak = strings.HasPrefix(v.etag, "W/")
	if !validETag(v.etag) {
		v.etag, v.weak = "", false
	}
	v.lastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	v.date, _ = http.ParseTime(h.Get("Date"))
	return v
}

// validETag checks entity-tag syntax (RFC 9110 §8.8.3): [W/] DQUOTE *etagc DQUOTE.
func validETag(t string) bool {
	t = strings.TrimPrefix(t, "W/")
	if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
		return false
	}
	for i := 1; i < len(t)-1; i++ {
		if c := t[i]; c < 0x21 || c == '"' || c == 0x7f {
			return false
		}
	}
	return len(t) <= 1024
}

// ETag returns the entity tag as sent, quotes and W/ included; "" when
// there is none or it is malformed.
func (v Validator) ETag() string { return v.etag }

// strongETag returns the ETag if it is strong, else "".
func (v Validator) strongETag() string {
	if v.weak {
		return ""
	}
	return v.etag
}

// strongDate reports whether Last-Modified may serve as a strong validator:
// RFC 9110 §8.8.2.2 lets a cache treat it as strong when the Date it came
// with is at least 60 seconds later (the same version cannot have changed
// twice within the second it names).
func (v Validator) strongDate() bool {
	return !v.lastModified.IsZero() && !v.date.IsZero() && v.date.Sub(v.lastModified) >= 60*time.Second
}

// DateOnly reports whether Last-Modified is this version's strong
// validator: RFC 9110 §13.1.5 allows a date in If-Range only when there is
// no entity tag at all, weak ones included.
func (v Validator) DateOnly() bool { return v.etag == "" && v.strongDate() }

// Immutable returns v for a resource a key rule says never changes (a
// package pool file, a blob named by digest): it is resumable without a
// validator, and what tells two versions apart is the total length and
// an overlap of bytes compared before splicing (NeedsOverlap), or any
// validators that both sides state.
func (v Validator) Immutable() Validator {
	v.immutable = true
	return v
}

// Resumable reports whether bytes of this version may be spliced with bytes
// fetched later: only under a strong validator (DESIGN invariant 1), or
// for an immutable resource (Immutable).
func (v Validator) Resumable() bool {
	return v.strongETag() != "" || v.DateOnly() || v.immutable
}

// NeedsOverlap reports whether a resume must fetch some stored bytes again
// and compare them before splicing: a date (which cannot see a change
// within its second) or no validator at all (immutable) identifies the
// version less well than the bytes.
func (v Validator) NeedsOverlap() bool { return v.Resumable() && v.strongETag() == "" }

// SameVersion reports whether a response's validators identify the same
// version as v, by strong comparison (RFC 9110 §8.8.3.2), and its
// representation metadata does not say otherwise (sameMetadata).
func (v Validator) SameVersion(o Validator) bool {
	if v.immutable && codings(o.encoding) == codings(v.encoding) {
		// The media type of bytes that never change is a label: a mirror
		// answering ranges as application/octet-stream (as Debian's does)
		// sends the same bytes. Only a content coding changes them.
		o.ctype = ""
	}
	if !v.sameMetadata(o) {
		return false
	}
	if e := v.strongETag(); e != "" {
		return o.strongETag() == e
	}
	if v.DateOnly() {
		return o.lastModified.Equal(v.lastModified) && o.etag == ""
	}
	if !v.immutable {
		return false
	}
	// Immutable, no strong validator of its own: only what both sides
	// state can differ.
	switch {
	case v.etag != "" && o.etag != "" && !weakMatch(v.etag, o.etag):
		return false
	case !v.lastModified.IsZero() && !o.lastModified.IsZero() && !v.lastModified.Equal(o.lastModified):
		return false
	}
	return true
}

// sameMetadata reports whether a response o states no other content
// coding or media type than v: bytes of two encodings or two types are two
// representations (RFC 9110 §8.3, §8.4) whatever their validators say, and
// splicing them mixes the two. A field o omits does not differ: a 206
// answering If-Range need not repeat them (RFC 9110 §15.3.7). A stored
// response without Content-Type has none to compare.
func (v Validator) sameMetadata(o Validator) bool {
	if o.encoding != "" && codings(o.encoding) != codings(v.encoding) {
		return false
	}
	return o.ctype == "" || v.ctype == "" || sameMediaType(v.ctype, o.ctype)
}

// codings normalizes a Content-Encoding list (RFC 9110 §8.4: codings are
// case-insensitive; "identity" is no coding at all).
func codings(field string) string {
	var out []string
	for _, c := range strings.Split(field, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			out = append(out, c)
		}
	}
	return strings.Join(out, ",")
}

// sameMediaType compares two Content-Type values (RFC 9110 §8.3.1: type,
// subtype and parameter names are case-insensitive; so, in practice, is a
// charset). Values that do not parse are equal only when identical.
func sameMediaType(a, b string) bool {
	if a == b {
		return true
	}
	ta, pa, errA := mime.ParseMediaType(a)
	tb, pb, errB := mime.ParseMediaType(b)
	if errA != nil || errB != nil || ta != tb || len(pa) != len(pb) {
		return false
	}
	for k, va := range pa {
		if vb, ok := pb[k]; !ok || !strings.EqualFold(va, vb) {
			return false
		}
	}
	return true
}

// SelectedBy reports whether a 304 carrying validators n selects the
// stored response with validators v for update (RFC 9111 §4.3.4): every
// validator the 304 carries must be the stored one's, an ETag by strong
// comparison when it is strong and by weak comparison when it is weak, a
// Last-Modified by equality. A 304 that carries none contradicts nothing:
// it answers our conditions, which named only the stored validators
// (§4.3.4 would select only a stored response without validators, but
// servers that omit them on 304s are common, and refetching every body
// from them would cost what revalidation is for).
func (v Validator) SelectedBy(n Validator) bool {
	switch {
	case n.etag != "" && !n.weak && v.strongETag() != n.etag:
		return false
	case n.etag != "" && n.weak && !weakMatch(v.etag, n.etag):
		return false
	}
	return n.lastModified.IsZero() || n.lastModified.Equal(v.lastModified)
}

// weakMatch is the weak comparison of entity tags (RFC 9110 §8.8.3.2):
// the opaque tags are equal, whether or not either is weak.
func weakMatch(a, b string) bool {
	return a != "" && b != "" && strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// IfRange returns the If-Range value that asks for more of this version, ""
// when it has no strong validator (RFC 9110 §13.1.5: never a weak tag).
func (v Validator) IfRange() string {
	if e := v.strongETag(); e != "" {
		return e
	}
	if v.DateOnly() {
		return v.lastModified.UTC().Format(http.TimeFormat)
	}
	return ""
}

// SetContinueConditions asks for more of exactly this version, failing with
// 412 if it changed: used when the client already has our headers (DESIGN
// invariant 3).
func (v Validator) SetContinueConditions(h http.Header) {
	switch {
	case v.strongETag() != "":
		h.Set("If-Match", v.strongETag())
	case !v.lastModified.IsZero():
		h.Set("If-Unmodified-Since", v.lastModified.UTC().Format(http.TimeFormat))
	}
	// Immutable without a validator: nothing to ask; the length and the
	// overlap check the version (NeedsOverlap).
}

// SetRevalidateConditions asks whether the stored version is still current
// (RFC 9111 §4.3.1).
func (v Validator) SetRevalidateConditions(h http.Header) {
	if v.etag != "" {
		h.Set("If-None-Match", v.etag)
	}
	if !v.lastModified.IsZero() {
		h.Set("If-Modified-Since", v.lastModified.UTC().Format(http.TimeFormat))
	}
}

// CanRevalidate reports whether a conditional request can check v.
func (v Validator) CanRevalidate() bool { return v.etag != "" || !v.lastModified.IsZero() }
