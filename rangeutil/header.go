package rangeutil

import (
	"errors"
	"strconv"
	"strings"
)

// Limits on untrusted header values. They bound the work and memory one
// request can cost; all are far above what real peers send.
const (
	// MaxRangeHeaderLen is the longest Range header ParseRange reads; longer
	// values fail with ErrTooLong. Callers then ignore the header, which
	// RFC 9110 §14.2 allows ("A server MAY ignore the Range header field").
	MaxRangeHeaderLen = 4096
	// MaxRanges is the most range-specs ParseRange accepts; more fail with
	// ErrTooMany. RFC 9110 §14.2 lets a server ignore or reject a Range with
	// many small or overlapping ranges, a known denial-of-service shape.
	MaxRanges = 64
	// MaxContentRangeLen is the longest Content-Range ParseContentRange reads;
	// a valid one is under 70 bytes ("bytes " and three 19-digit numbers).
	MaxContentRangeLen = 256
)

// Sentinel errors returned by the parsers, for callers to branch on with
// errors.Is. Each means "do not trust this header".
var (
	// ErrSyntax reports a value that does not match the RFC 9110 grammar, or
	// an invalid range such as last < first (RFC 9110 §14.1.1, §14.4).
	ErrSyntax = errors.New("rangeutil: malformed range")
	// ErrUnit reports a well-formed range unit other than "bytes", the only
	// one we understand. RFC 9110 §14.2: an origin server must ignore a Range
	// with a unit it does not understand, and a proxy may discard it.
	ErrUnit = errors.New("rangeutil: unsupported range unit")
	// ErrTooLong reports a header longer than MaxRangeHeaderLen or
	// MaxContentRangeLen.
	ErrTooLong = errors.New("rangeutil: header too long")
	// ErrTooMany reports a Range header with more than MaxRanges range-specs.
	ErrTooMany = errors.New("rangeutil: too many ranges")
)

// Spec is one range-spec of a Range header before it is resolved against a
// representation's length (RFC 9110 §14.1.1). It keeps HTTP's inclusive form:
//
//	"a-b" (int-range, both ends): First=a, Last=b, with a <= b
//	"a-"  (int-range, open end):  First=a, Last=-1
//	"-n"  (suffix-range):         First=-1, Last=n, the suffix length
//
// Any other pair of values is invalid (see Valid).
type Spec struct{ First, Last int64 }

// Valid reports whether s is one of the three forms documented on Spec. Every
// Spec returned by ParseRange is valid; RFC 9110 §14.1.1 makes an int-range
// with last < first invalid.
func (s Spec) Valid() bool {
	switch {
	case s.First == -1:
		return s.Last >= 0
	case s.First < 0:
		return false
	default:
		return s.Last == -1 || s.Last >= s.First
	}
}

// Resolve returns the bytes s selects from a representation of size bytes,
// and false when s is unsatisfiable for that size or invalid.
//
// RFC 9110 §14.1.2: an int-range is satisfiable when first < size, and its
// last is clamped to size-1; a suffix-range is satisfiable when its length is
// non-zero, and a suffix longer than the representation selects all of it.
// For size 0 Resolve returns false even for "-n": there is no byte to send and
// no Content-Range that could describe it, and RFC 9110 §14.2 lets a server
// ignore Range when the representation has no content.
func (s Spec) Resolve(size int64) (Range, bool) {
	if size <= 0 || !s.Valid() {
		return Range{}, false
	}
	if s.First == -1 {
		if s.Last == 0 {
			return Range{}, false
		}
		return Range{Start: size - min(s.Last, size), End: size}, true
	}
	if s.First >= size {
		return Range{}, false
	}
	last := s.Last
	if last == -1 || last >= size {
		last = size - 1
	}
	return Range{Start: s.First, End: last + 1}, true
}

// String returns s in its wire form: "a-b", "a-" or "-n". An invalid Spec
// formats as "invalid{First,Last}", which no parser accepts, so it cannot
// pass for a different request.
func (s Spec) String() string { return string(s.appendTo(nil)) }

func (s Spec) appendTo(b []byte) []byte {
	switch {
	case !s.Valid():
		b = append(b, "invalid{"...)
		b = strconv.AppendInt(b, s.First, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, s.Last, 10)
		return append(b, '}')
	case s.First == -1:
		return strconv.AppendInt(append(b, '-'), s.Last, 10)
	case s.Last == -1:
		return append(strconv.AppendInt(b, s.First, 10), '-')
	default:
		b = append(strconv.AppendInt(b, s.First, 10), '-')
		return strconv.AppendInt(b, s.Last, 10)
	}
}

// ParseRange parses a Range request header value (RFC 9110 §14.2):
//
//	Range = ranges-specifier = range-unit "=" range-set
//
// The unit must be "bytes" in any case (RFC 9110 §14.1: range units are
// case-insensitive); another well-formed unit gives ErrUnit. The range-set is
// a comma list (RFC 9110 §5.6.1): whitespace (SP, HTAB) around elements is
// skipped and so are empty elements, but at least one range-spec must remain.
// Numbers are 1*DIGIT and must fit in an int64. Anything else, including an
// int-range with last < first (invalid per RFC 9110 §14.1.1), gives
// ErrSyntax. Values longer than MaxRangeHeaderLen give ErrTooLong, and more
// than MaxRanges range-specs give ErrTooMany.
//
// Specs are returned in request order, unresolved; see ResolveAll.
func ParseRange(h string) ([]Spec, error) {
	if len(h) > MaxRangeHeaderLen {
		return nil, ErrTooLong
	}
	unit, set, ok := strings.Cut(h, "=")
	if !ok {
		return nil, ErrSyntax
	}
	if err := checkUnit(unit); err != nil {
		return nil, err
	}
	return parseRangeSet(set)
}

// parseRangeSet parses range-set = 1#range-spec (RFC 9110 §14.1.1, list
// syntax from §5.6.1).
func parseRangeSet(set string) ([]Spec, error) {
	var specs []Spec
	for elem := range strings.SplitSeq(set, ",") {
		elem = trimOWS(elem)
		if elem == "" {
			continue // RFC 9110 §5.6.1: recipients accept empty list elements
		}
		if len(specs) == MaxRanges {
			return nil, ErrTooMany
		}
		s, err := parseSpec(elem)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, ErrSyntax
	}
	return specs, nil
}

// parseSpec parses one range-spec: int-range ("a-b", "a-") or suffix-range
// ("-n") (RFC 9110 §14.1.1).
func parseSpec(elem string) (Spec, error) {
	first, last, ok := strings.Cut(elem, "-")
	if !ok {
		return Spec{}, ErrSyntax
	}
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return Spec{}, ErrSyntax
		}
		return Spec{First: -1, Last: n}, nil
	}
	a, ok := parseDigits(first)
	if !ok {
		return Spec{}, ErrSyntax
	}
	if last == "" {
		return Spec{First: a, Last: -1}, nil
	}
	b, ok := parseDigits(last)
	if !ok || b < a { // RFC 9110 §14.1.1: last-pos < first-pos is invalid
		return Spec{}, ErrSyntax
	}
	return Spec{First: a, Last: b}, nil
}

// FormatSpecs returns a Range header value for specs, e.g. "bytes=0-99,200-".
// It returns "" when specs is empty or holds an invalid Spec: "bytes=" alone
// is not a valid header (RFC 9110 §14.1.1 needs one range-spec), and sending
// no Range is safer than sending a wrong one.
func FormatSpecs(specs []Spec) string {
	if len(specs) == 0 {
		return ""
	}
	b := []byte("bytes=")
	for i, s := range specs {
		if !s.Valid() {
			return ""
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendTo(b)
	}
	return string(b)
}

// ResolveAll resolves specs against a representation of size bytes and
// returns the satisfiable ranges in request order, or nil when none is. A
// nil result is the 416 case (RFC 9110 §15.5.17). Overlaps are kept: whether
// to coalesce or refuse them is the server's choice (RFC 9110 §14.2).
func ResolveAll(specs []Spec, size int64) []Range {
	var rs []Range
	for _, s := range specs {
		if r, ok := s.Resolve(size); ok {
			rs = append(rs, r)
		}
	}
	return rs
}

// HeaderFor returns the Range request header value that asks for exactly the
// bytes of r: "bytes=Start-(End-1)". It returns "" when r is empty or starts
// below zero, since no range-spec denotes nothing (RFC 9110 §14.1.1).
func HeaderFor(r Range) string {
	if r.Empty() || r.Start < 0 {
		return ""
	}
	return FormatSpecs([]Spec{{First: r.Start, Last: r.End - 1}})
}

// HeaderFrom returns the Range request header value asking for every byte
// from start on: "bytes=start-". It returns "" for a negative start.
func HeaderFrom(start int64) string {
	if start < 0 {
		return ""
	}
	return FormatSpecs([]Spec{{First: start, Last: -1}})
}

// checkUnit validates range-unit = token (RFC 9110 §14.1), accepting only
// "bytes", case-insensitively.
func checkUnit(unit string) error {
	if !isToken(unit) {
		return ErrSyntax
	}
	if !strings.EqualFold(unit, "bytes") {
		return ErrUnit
	}
	return nil
}

// parseDigits parses 1*DIGIT as a non-negative int64. Unlike strconv it
// rejects signs and reports overflow as plain failure.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		d := int64(s[i]) - '0'
		if d < 0 || d > 9 || n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// trimOWS removes OWS = *( SP / HTAB ) from both ends of s (RFC 9110 §5.6.3).
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// isToken reports whether s is a token: 1*tchar (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
