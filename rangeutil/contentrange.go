package rangeutil

import (
	"strconv"
	"strings"
)

// ContentRange is a parsed Content-Range header (RFC 9110 §14.4): which bytes
// a 206 response carries and the complete length, or, in a 416 response, only
// the complete length.
type ContentRange struct {
	Range       Range // half-open; zero when Unsatisfied
	Size        int64 // complete length; -1 when the sender wrote "*"
	Unsatisfied bool  // the "bytes */N" form of a 416 response
}

// ParseContentRange parses a Content-Range value strictly (RFC 9110 §14.4):
//
//	Content-Range     = range-unit SP ( range-resp / unsatisfied-range )
//	range-resp        = incl-range "/" ( complete-length / "*" )
//	incl-range        = first-pos "-" last-pos
//	unsatisfied-range = "*/" complete-length
//
// The unit must be "bytes" in any case, else ErrUnit. Exactly one SP follows
// the unit and no other whitespace is allowed. As §14.4 requires, a range-resp
// is invalid when last < first or when a known complete length is <= last;
// these give ErrSyntax, like any other deviation, and so does a last of
// MaxInt64, whose half-open end does not fit an int64. Values longer than
// MaxContentRangeLen give ErrTooLong. Strictness matters: the proxy writes the
// body into its cache at Range.Start, so a header it misreads corrupts the
// cache file.
func ParseContentRange(s string) (ContentRange, error) {
	if len(s) > MaxContentRangeLen {
		return ContentRange{}, ErrTooLong
	}
	unit, rest, ok := strings.Cut(s, " ")
	if !ok {
		return ContentRange{}, ErrSyntax
	}
	if err := checkUnit(unit); err != nil {
		return ContentRange{}, err
	}
	if size, ok := strings.CutPrefix(rest, "*/"); ok {
		return parseUnsatisfied(size)
	}
	return parseRangeResp(rest)
}

// parseUnsatisfied parses the complete-length of unsatisfied-range.
func parseUnsatisfied(s string) (ContentRange, error) {
	n, ok := parseDigits(s)
	if !ok {
		return ContentRange{}, ErrSyntax
	}
	return ContentRange{Size: n, Unsatisfied: true}, nil
}

// parseRangeResp parses range-resp and converts incl-range to half-open.
func parseRangeResp(s string) (ContentRange, error) {
	incl, size, ok := strings.Cut(s, "/")
	if !ok {
		return ContentRange{}, ErrSyntax
	}
	first, last, ok := parseInclRange(incl)
	if !ok {
		return ContentRange{}, ErrSyntax
	}
	n := int64(-1)
	if size != "*" {
		if n, ok = parseDigits(size); !ok || last >= n {
			return ContentRange{}, ErrSyntax // RFC 9110 §14.4: length <= last-pos is invalid
		}
	}
	return ContentRange{Range: Range{Start: first, End: last + 1}, Size: n}, nil
}

// parseInclRange parses incl-range = first-pos "-" last-pos, requiring
// first <= last (RFC 9110 §14.4) and last < MaxInt64 so that last+1 fits.
func parseInclRange(s string) (first, last int64, ok bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, false
	}
	first, ok1 := parseDigits(a)
	last, ok2 := parseDigits(b)
	if !ok1 || !ok2 || last < first || last == 1<<63-1 {
		return 0, 0, false
	}
	return first, last, true
}

// FormatContentRange returns the Content-Range value of a 206 response
// carrying the bytes of r out of size: "bytes 0-99/1000", or "bytes 0-99/*"
// when size < 0 (unknown). It returns "" when r is empty, starts below zero,
// or ends past a known size: RFC 9110 §14.4 gives such a value no meaning, and
// a wrong Content-Range makes the client write bytes at the wrong offset.
func FormatContentRange(r Range, size int64) string {
	if r.Empty() || r.Start < 0 || (size >= 0 && r.End > size) {
		return ""
	}
	b := []byte("bytes ")
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.End-1, 10)
	b = append(b, '/')
	if size < 0 {
		return string(append(b, '*'))
	}
	return string(strconv.AppendInt(b, size, 10))
}

// FormatUnsatisfied returns the Content-Range value a 416 response carries
// (RFC 9110 §14.4, §15.5.17): "bytes */size". It returns "" for a negative
// size, which unsatisfied-range cannot express.
func FormatUnsatisfied(size int64) string {
	if size < 0 {
		return ""
	}
	return "bytes */" + strconv.FormatInt(size, 10)
}
