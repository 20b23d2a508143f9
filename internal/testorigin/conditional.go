package testorigin

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// condResult is the outcome of one precondition. condNone means the header
// was absent (or must be ignored), which RFC 9110 §13.2.2 treats differently
// from a false condition: it moves on to the next step.
type condResult int

const (
	condNone condResult = iota
	condTrue
	condFalse
)

// representation is what the conditionals are evaluated against: the
// selected representation's size and validators.
type representation struct {
	size         int64
	etag         string    // "" when the origin sends no ETag
	lastModified time.Time // zero when the origin sends no Last-Modified
	ignoreRange  bool
}

// httpRange is a half-open byte range [start, end). Only parseRange and
// contentRange know HTTP's inclusive "first-last" form.
type httpRange struct {
	start, end int64
}

// length returns the number of bytes in r.
func (r httpRange) length() int64 { return r.end - r.start }

// contentRange formats r for a Content-Range field (RFC 9110 §14.4), moving
// both ends by shift so that a lying origin stays self-consistent in length.
func (r httpRange) contentRange(size, shift int64) string {
	return "bytes " + strconv.FormatInt(r.start+shift, 10) + "-" +
		strconv.FormatInt(r.end-1+shift, 10) + "/" + strconv.FormatInt(size, 10)
}

// plan is the decision for one GET or HEAD of an existing resource.
type plan struct {
	status int
	rng    httpRange // the body to send for 200 and 206
}

// decide evaluates the preconditions and the Range header in the order of
// RFC 9110 §13.2.2 and returns the response to send. It does no I/O.
func decide(method string, h http.Header, rep representation) plan {
	full := plan{status: http.StatusOK, rng: httpRange{0, rep.size}}
	// Steps 1–2: If-Match, else If-Unmodified-Since.
	ok := checkIfMatch(h, rep)
	if ok == condNone {
		ok = checkIfUnmodifiedSince(h, rep)
	}
	if ok == condFalse {
		return plan{status: http.StatusPreconditionFailed}
	}
	// Steps 3–4: If-None-Match, else If-Modified-Since; both mean 304 for GET/HEAD.
	switch checkIfNoneMatch(h, rep) {
	case condFalse:
		return plan{status: http.StatusNotModified}
	case condNone:
		if checkIfModifiedSince(h, rep) == condFalse {
			return plan{status: http.StatusNotModified}
		}
	}
	// Step 5: Range, which RFC 9110 §14.2 defines for GET only and lets a
	// server ignore; If-Range false means "send the whole new representation".
	if method != http.MethodGet || rep.ignoreRange || checkIfRange(h, rep) == condFalse {
		return full
	}
	rng, res := parseRange(h.Values("Range"), rep.size)
	switch res {
	case rangeOne:
		return plan{status: http.StatusPartialContent, rng: rng}
	case rangeUnsatisfiable:
		return plan{status: http.StatusRequestedRangeNotSatisfiable}
	}
	return full
}

// checkIfMatch evaluates If-Match with the strong comparison that
// RFC 9110 §13.1.1 requires: a weak ETag, or no ETag, never matches.
func checkIfMatch(h http.Header, rep representation) condResult {
	v := headerList(h, "If-Match")
	if v == "" {
		return condNone
	}
	if strings.TrimSpace(v) == "*" {
		return condTrue // RFC 9110 §13.1.1: we always have a current representation
	}
	return anyETag(v, func(tag string) bool { return strongMatch(tag, rep.etag) })
}

// checkIfUnmodifiedSince evaluates If-Unmodified-Since, which RFC 9110
// §13.1.4 says to ignore when the date is invalid or the resource has no
// modification date.
func checkIfUnmodifiedSince(h http.Header, rep representation) condResult {
	t, ok := headerTime(h, "If-Unmodified-Since")
	if !ok || rep.lastModified.IsZero() {
		return condNone
	}
	if rep.lastModified.After(t) {
		return condFalse
	}
	return condTrue
}

// checkIfNoneMatch evaluates If-None-Match with the weak comparison of
// RFC 9110 §13.1.2. condFalse means "a tag matched": not modified.
func checkIfNoneMatch(h http.Header, rep representation) condResult {
	v := headerList(h, "If-None-Match")
	if v == "" {
		return condNone
	}
	if strings.TrimSpace(v) == "*" {
		return condFalse
	}
	if anyETag(v, func(tag string) bool { return weakMatch(tag, rep.etag) }) == condTrue {
		return condFalse
	}
	return condTrue
}

// checkIfModifiedSince evaluates If-Modified-Since (RFC 9110 §13.1.3).
// condFalse means "not modified since the date".
func checkIfModifiedSince(h http.Header, rep representation) condResult {
	t, ok := headerTime(h, "If-Modified-Since")
	if !ok || rep.lastModified.IsZero() {
		return condNone
	}
	if rep.lastModified.After(t) {
		return condTrue
	}
	return condFalse
}

// checkIfRange evaluates If-Range (RFC 9110 §13.1.5): an entity tag must
// match strongly (a weak tag never does), a date must equal Last-Modified
// exactly. Anything else is false, so the Range header is ignored.
func checkIfRange(h http.Header, rep representation) condResult {
	v := strings.TrimSpace(h.Get("If-Range"))
	if v == "" {
		return condNone
	}
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		tag, rest := scanETag(v)
		return boolCond(tag != "" && strings.TrimSpace(rest) == "" && strongMatch(tag, rep.etag))
	}
	t, err := http.ParseTime(v)
	return boolCond(err == nil && !rep.lastModified.IsZero() && t.Equal(rep.lastModified))
}

// boolCond converts an evaluated condition to a condResult.
func boolCond(b bool) condResult {
	if b {
		return condTrue
	}
	return condFalse
}

// headerList joins all field lines of a list-valued header (RFC 9110 §5.3).
func headerList(h http.Header, name string) string {
	return strings.Join(h.Values(name), ",")
}

// headerTime parses a date header; ok is false when it is absent or invalid.
func headerTime(h http.Header, name string) (time.Time, bool) {
	v := h.Get(name)
	if v == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

// anyETag reports condTrue if match accepts one of the entity tags in the
// comma-separated list v. A malformed list stops the scan: what was read so
// far is all that can match.
func anyETag(v string, match func(tag string) bool) condResult {
	for {
		v = strings.TrimLeft(v, " \t,")
		if v == "" {
			return condFalse
		}
		tag, rest := scanETag(v)
		if tag == "" {
			return condFalse
		}
		if match(tag) {
			return condTrue
		}
		v = rest
	}
}

// scanETag reads one entity-tag (RFC 9110 §8.8.3) from the start of s,
// returning it with its W/ prefix and quotes, and the rest of s. The opaque
// part may contain commas, so the list cannot simply be split on them.
func scanETag(s string) (tag, rest string) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) < start+2 || s[start] != '"' {
		return "", s
	}
	end := strings.IndexByte(s[start+1:], '"')
	if end < 0 {
		return "", s
	}
	end += start + 2
	return s[:end], s[end:]
}

// strongMatch is the strong comparison of RFC 9110 §8.8.3.2: both tags
// strong and identical.
func strongMatch(a, b string) bool {
	return a != "" && a == b && !strings.HasPrefix(a, "W/")
}

// weakMatch is the weak comparison of RFC 9110 §8.8.3.2: opaque tags equal,
// weakness ignored.
func weakMatch(a, b string) bool {
	return a != "" && b != "" && strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// rangeResult classifies a Range header.
type rangeResult int

const (
	rangeIgnore        rangeResult = iota // absent, unparsable or several ranges: send 200
	rangeOne                              // one satisfiable range: send 206
	rangeUnsatisfiable                    // one range, not satisfiable: send 416
)

// parseRange parses the Range field lines against a representation of size
// bytes. It accepts exactly one byte-range-spec or suffix-range
// (RFC 9110 §14.1.1); several ranges are ignored, as §14.2 allows, so the
// client gets 200 and the whole body.
func parseRange(lines []string, size int64) (httpRange, rangeResult) {
	if len(lines) != 1 {
		return httpRange{}, rangeIgnore
	}
	unit, spec, ok := strings.Cut(strings.TrimSpace(lines[0]), "=")
	// RFC 9110 §14.1: range units are case-insensitive.
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(spec, ",") {
		return httpRange{}, rangeIgnore
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return httpRange{}, rangeIgnore
	}
	if first == "" {
		return suffixRange(last, size)
	}
	return firstLastRange(first, last, size)
}

// suffixRange resolves "-n": the last n bytes, all of them if n > size.
func suffixRange(last string, size int64) (httpRange, rangeResult) {
	n, ok := parseDigits(last)
	if !ok {
		return httpRange{}, rangeIgnore
	}
	if n == 0 || size == 0 {
		return httpRange{}, rangeUnsatisfiable // RFC 9110 §14.1.1
	}
	return httpRange{size - min(n, size), size}, rangeOne
}

// firstLastRange resolves "a-b" and "a-", clamping b to the last byte.
func firstLastRange(first, last string, size int64) (httpRange, rangeResult) {
	a, ok := parseDigits(first)
	if !ok {
		return httpRange{}, rangeIgnore
	}
	end := size
	if last != "" {
		b, ok := parseDigits(last)
		if !ok || b < a {
			return httpRange{}, rangeIgnore // RFC 9110 §14.1.1: invalid spec
		}
		end = min(b, size-1) + 1 // no b+1: b may be MaxInt64
	}
	if a >= size {
		return httpRange{}, rangeUnsatisfiable
	}
	return httpRange{a, end}, rangeOne
}

// parseDigits parses a non-empty run of ASCII digits; signs, spaces and
// overflow are rejected rather than guessed at.
func parseDigits(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
