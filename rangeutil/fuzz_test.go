package rangeutil

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// isParseError reports whether err is one of the parsers' sentinel errors.
func isParseError(err error) bool {
	for _, want := range []error{ErrSyntax, ErrUnit, ErrTooLong, ErrTooMany} {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

// Oracle for ParseRange, written from the RFC 9110 grammar with regular
// expressions instead of the parser's hand-written scanning.
var (
	rangeHeaderRE = regexp.MustCompile(`^[bB][yY][tT][eE][sS]=(.*)$`)
	rangeSpecRE   = regexp.MustCompile(`^[ \t]*(?:([0-9]+)-([0-9]*)|-([0-9]+))[ \t]*$`)
	owsRE         = regexp.MustCompile(`^[ \t]*$`)
)

// oracleParseRange returns the specs h holds, or false when it is invalid.
func oracleParseRange(h string) ([]Spec, bool) {
	if len(h) > MaxRangeHeaderLen {
		return nil, false
	}
	m := rangeHeaderRE.FindStringSubmatch(h)
	if m == nil {
		return nil, false
	}
	var specs []Spec
	for _, elem := range strings.Split(m[1], ",") {
		if owsRE.MatchString(elem) {
			continue
		}
		s, ok := oracleSpec(elem)
		if !ok {
			return nil, false
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 || len(specs) > MaxRanges {
		return nil, false
	}
	return specs, true
}

func oracleSpec(elem string) (Spec, bool) {
	m := rangeSpecRE.FindStringSubmatch(elem)
	if m == nil {
		return Spec{}, false
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if m[3] != "" {
		n, ok := num(m[3])
		return Spec{-1, n}, ok
	}
	a, ok := num(m[1])
	if !ok {
		return Spec{}, false
	}
	if m[2] == "" {
		return Spec{a, -1}, true
	}
	b, ok := num(m[2])
	return Spec{a, b}, ok && b >= a
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"bytes=0-99", "bytes=-500", "bytes=100-", "BYTES=0-0,-1", "bytes= 1-2 ,, 3-\t",
		"bytes=5-4", "bytes=-", "bytes=1-2-3", "items=0-1", "bytes=9223372036854775807-",
		"bytes=0-9223372036854775808", "bytes=" + strings.Repeat("0-1,", MaxRanges+1), "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		specs, err := ParseRange(h)
		want, ok := oracleParseRange(h)
		if (err == nil) != ok || !slices.Equal(specs, want) {
			t.Fatalf("ParseRange(%q) = %v, %v; oracle says %v, %v", h, specs, err, want, ok)
		}
		if err != nil {
			if !isParseError(err) {
				t.Fatalf("ParseRange(%q) error %v is not a sentinel", h, err)
			}
			return
		}
		for _, s := range specs {
			checkResolve(t, s)
		}
		out := FormatSpecs(specs)
		if len(out) > len(h) {
			t.Fatalf("FormatSpecs(ParseRange(%q)) = %q, longer than the input", h, out)
		}
		back, err := ParseRange(out)
		if err != nil || !slices.Equal(back, specs) {
			t.Fatalf("ParseRange(%q) = %v, %v, want %v (from %q)", out, back, err, specs, h)
		}
	})
}

// checkResolve checks that s resolves inside [0, size) for assorted sizes,
// and that a resolved range formats as a Content-Range that parses back.
func checkResolve(t testing.TB, s Spec) {
	t.Helper()
	if !s.Valid() {
		t.Fatalf("parsed spec %#v is not Valid", s)
	}
	for _, size := range []int64{0, 1, 2, 100, 1<<63 - 1} {
		r, ok := s.Resolve(size)
		if !ok {
			continue
		}
		if r.Empty() || r.Start < 0 || r.End > size {
			t.Fatalf("%#v.Resolve(%d) = %v, outside [0,%d)", s, size, r, size)
		}
		cr, err := ParseContentRange(FormatContentRange(r, size))
		if err != nil || cr.Range != r || cr.Size != size {
			t.Fatalf("Content-Range round trip of %v/%d = %+v, %v", r, size, cr, err)
		}
	}
}

// Oracle for ParseContentRange: the RFC 9110 §14.4 grammar as a regular
// expression, plus the two validity rules.
var contentRangeRE = regexp.MustCompile(`^[bB][yY][tT][eE][sS] (?:([0-9]+)-([0-9]+)/([0-9]+|\*)|\*/([0-9]+))$`)

func oracleContentRange(s string) (ContentRange, bool) {
	if len(s) > MaxContentRangeLen {
		return ContentRange{}, false
	}
	m := contentRangeRE.FindStringSubmatch(s)
	if m == nil {
		return ContentRange{}, false
	}
	var bad bool
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		bad = bad || err != nil
		return n
	}
	if m[4] != "" {
		size := num(m[4])
		return ContentRange{Size: size, Unsatisfied: true}, !bad
	}
	first, last, size := num(m[1]), num(m[2]), int64(-1)
	if m[3] != "*" {
		size = num(m[3])
		bad = bad || last >= size
	}
	bad = bad || last < first || last == 1<<63-1
	return ContentRange{Range: Range{first, last + 1}, Size: size}, !bad
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-99/1000", "bytes */1000", "bytes 42-1233/*", "BYTES 1-2/3", "bytes 0-1000/1000",
		"bytes 5-4/10", "bytes  0-1/2", "items 0-1/2", "bytes */*", "bytes 0-9223372036854775807/*",
		"bytes 0-9223372036854775806/9223372036854775807", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := ParseContentRange(s)
		want, ok := oracleContentRange(s)
		if (err == nil) != ok || (ok && cr != want) {
			t.Fatalf("ParseContentRange(%q) = %+v, %v; oracle says %+v, %v", s, cr, err, want, ok)
		}
		if err != nil {
			if !isParseError(err) || cr != (ContentRange{}) {
				t.Fatalf("ParseContentRange(%q) = %+v, %v, want zero value and a sentinel", s, cr, err)
			}
			return
		}
		out := formatContentRange(cr)
		if out == "" || len(out) > len(s) {
			t.Fatalf("format(ParseContentRange(%q)) = %q", s, out)
		}
		back, err := ParseContentRange(out)
		if err != nil || back != cr {
			t.Fatalf("ParseContentRange(%q) = %+v, %v, want %+v (from %q)", out, back, err, cr, s)
		}
	})
}

// formatContentRange is the inverse of ParseContentRange.
func formatContentRange(cr ContentRange) string {
	if cr.Unsatisfied {
		return FormatUnsatisfied(cr.Size)
	}
	return FormatContentRange(cr.Range, cr.Size)
}

// fuzzSpace bounds the offsets FuzzSetOps writes, so that a bitmap of that
// size is a complete oracle.
const fuzzSpace = 512

// maxFuzzOps bounds the ops one FuzzSetOps input runs, keeping each execution
// (and so the fuzzer's minimization) fast; 128 ops reach sets of every shape
// the space allows.
const maxFuzzOps = 128

// setOp is one Insert or Remove decoded from three fuzz bytes.
type setOp struct {
	insert bool
	r      Range
}

// decodeOp reads a 24-bit little-endian word: bit 0 selects Insert or Remove,
// bits 1-9 the start, bits 10-18 the length; when bits 19-23 are all set the
// start is made negative, which both mutators must ignore.
func decodeOp(b []byte) setOp {
	x := int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16
	start := (x >> 1) & (fuzzSpace - 1)
	end := min(start+((x>>10)&(fuzzSpace-1)), fuzzSpace)
	if x>>19 == 31 {
		start = -1 - start
	}
	return setOp{insert: x&1 == 0, r: Range{start, end}}
}

// bitmap is FuzzSetOps's oracle: m[i] says whether byte i is in the set.
type bitmap [fuzzSpace]bool

func (m *bitmap) apply(op setOp) {
	if op.r.Start < 0 {
		return
	}
	for i := op.r.Start; i < op.r.End; i++ {
		m[i] = op.insert
	}
}

func (m *bitmap) has(off int64) bool { return off >= 0 && off < fuzzSpace && m[off] }

// runs returns the maximal runs of present bytes: the unique coalesced form.
func (m *bitmap) runs() []Range {
	var rs []Range
	for i := int64(0); i < fuzzSpace; i++ {
		if !m.has(i) {
			continue
		}
		if n := len(rs); n > 0 && rs[n-1].End == i {
			rs[n-1].End++
		} else {
			rs = append(rs, Range{i, i + 1})
		}
	}
	return rs
}

// missing returns the maximal runs of absent bytes inside r.
func (m *bitmap) missing(r Range) []Range {
	var gaps []Range
	for i := r.Start; i < r.End; i++ {
		if m.has(i) {
			continue
		}
		if n := len(gaps); n > 0 && gaps[n-1].End == i {
			gaps[n-1].End++
		} else {
			gaps = append(gaps, Range{i, i + 1})
		}
	}
	return gaps
}

func FuzzSetOps(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x14, 0x28, 0x00, 0x3c, 0x28, 0x00, 0x28, 0x28, 0x00}) // [10,20) [30,40) [20,30): fills a gap
	f.Add([]byte{0x00, 0xf8, 0x07, 0x15, 0x0c, 0x00})                   // insert [0,510), remove [10,13)
	f.Add([]byte{0x0a, 0x14, 0xf8, 0x01, 0x0c, 0x00})                   // negative insert, remove
	f.Fuzz(func(t *testing.T, ops []byte) {
		var s Set
		var oracle bitmap
		for ops = ops[:min(len(ops), 3*maxFuzzOps)]; len(ops) >= 3; ops = ops[3:] {
			op := decodeOp(ops)
			if op.insert {
				s.Insert(op.r)
			} else {
				s.Remove(op.r)
			}
			oracle.apply(op)
			checkInvariant(t, s)
			checkAgainstOracle(t, s, &oracle, op.r)
		}
		checkPointQueries(t, s, &oracle, func(int64) bool { return true })
		checkRangeQueries(t, s, &oracle, Range{-1, fuzzSpace + 1})
		checkRoundTrips(t, s)
	})
}

// checkAgainstOracle compares s with the bitmap after an op on q: the
// intervals, the point queries next to q's ends, where an op can go wrong,
// and the range queries on ranges around q. FuzzSetOps checks every offset
// once at the end.
func checkAgainstOracle(t testing.TB, s Set, m *bitmap, q Range) {
	t.Helper()
	if got, want := s.Ranges(), m.runs(); !slices.Equal(got, want) {
		t.Fatalf("set = %v, oracle runs %v", got, want)
	}
	nearEnds := func(off int64) bool {
		return off-q.Start >= -2 && off-q.Start <= 1 || off-q.End >= -2 && off-q.End <= 1
	}
	checkPointQueries(t, s, m, nearEnds)
	for _, r := range []Range{q, {q.Start / 2, q.End + q.Len()}, {q.End, q.Start}} {
		checkRangeQueries(t, s, m, r)
	}
}

// checkPointQueries checks Has, ContiguousEnd and NextPresent at the offsets
// in [-1, fuzzSpace+1] that pick selects, and Covered. It computes the
// oracle's answers for every offset right to left in one pass.
func checkPointQueries(t testing.TB, s Set, m *bitmap, pick func(off int64) bool) {
	contEnd, next, nextOK := int64(fuzzSpace+1), int64(0), false
	covered := int64(0)
	for off := int64(fuzzSpace + 1); off >= -1; off-- {
		wantEnd := off
		if m.has(off) {
			next, nextOK, covered = off, true, covered+1
			wantEnd = contEnd
		} else {
			contEnd = off
		}
		if !pick(off) {
			continue
		}
		if got := s.Has(off); got != m.has(off) {
			t.Fatalf("%v.Has(%d) = %v, oracle %v", s, off, got, m.has(off))
		}
		if got := s.ContiguousEnd(off); got != wantEnd {
			t.Fatalf("%v.ContiguousEnd(%d) = %d, oracle %d", s, off, got, wantEnd)
		}
		if got, ok := s.NextPresent(off); ok != nextOK || (ok && got != next) {
			t.Fatalf("%v.NextPresent(%d) = %d, %v, oracle %d, %v", s, off, got, ok, next, nextOK)
		}
	}
	if got := s.Covered(); got != covered {
		t.Fatalf("%v.Covered() = %d, oracle %d", s, got, covered)
	}
}

// checkRangeQueries checks Missing, FirstMissing and Contains on r.
func checkRangeQueries(t testing.TB, s Set, m *bitmap, r Range) {
	want := m.missing(r)
	if got := s.Missing(r); !slices.Equal(got, want) {
		t.Fatalf("%v.Missing(%v) = %v, oracle %v", s, r, got, want)
	}
	first, ok := s.FirstMissing(r)
	if ok != (len(want) > 0) || (ok && first != want[0]) || (!ok && first != Range{}) {
		t.Fatalf("%v.FirstMissing(%v) = %v, %v, oracle %v", s, r, first, ok, want)
	}
	if got := s.Contains(r); got != (len(want) == 0) {
		t.Fatalf("%v.Contains(%v) = %v, oracle gaps %v", s, r, got, want)
	}
}

// checkRoundTrips checks that s survives the binary and JSON encodings.
func checkRoundTrips(t testing.TB, s Set) {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Set
	if err := back.UnmarshalBinary(b); err != nil || !back.Equal(s) {
		t.Fatalf("binary round trip of %v = %v, %v", s, back, err)
	}
	if again, _ := back.MarshalBinary(); !bytes.Equal(again, b) {
		t.Fatalf("MarshalBinary not deterministic for %v: %x then %x", s, b, again)
	}
	j, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Set
	if err := fromJSON.UnmarshalJSON(j); err != nil || !fromJSON.Equal(s) {
		t.Fatalf("JSON round trip of %v via %s = %v, %v", s, j, fromJSON, err)
	}
}

func FuzzSetUnmarshal(f *testing.F) {
	for _, s := range []Set{{}, setOf(Range{0, 10}), setOf(Range{5, 10}, Range{20, 300}), setOf(Range{0, 1<<63 - 1})} {
		b, _ := s.MarshalBinary()
		f.Add(b)
		j, _ := s.MarshalJSON()
		f.Add(j)
	}
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{2, 0, 5, 0, 5})
	f.Add([]byte(`[[0,10],[10,20]]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Set
		if err := s.UnmarshalBinary(b); err == nil {
			checkInvariant(t, s)
			if cap(s.rs) > len(b) {
				t.Fatalf("UnmarshalBinary(%x) allocated %d intervals", b, cap(s.rs))
			}
			if again, _ := s.MarshalBinary(); !bytes.Equal(again, b) {
				t.Fatalf("UnmarshalBinary(%x) = %v, which marshals to %x", b, s, again)
			}
		} else if !errors.Is(err, ErrInvalidSet) {
			t.Fatalf("UnmarshalBinary(%x) error %v does not wrap ErrInvalidSet", b, err)
		}
		var js Set
		if err := js.UnmarshalJSON(b); err == nil {
			checkInvariant(t, js)
			checkRoundTrips(t, js)
		} else if !errors.Is(err, ErrInvalidSet) {
			t.Fatalf("UnmarshalJSON(%q) error %v does not wrap ErrInvalidSet", b, err)
		}
	})
}
