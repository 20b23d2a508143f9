package rangeutil

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrInvalidSet reports encoded Set data that is malformed or would break the
// Set invariant. Callers treat the cached metadata as lost and refetch.
var ErrInvalidSet = errors.New("rangeutil: invalid set encoding")

func invalidSet(why string) error { return fmt.Errorf("%w: %s", ErrInvalidSet, why) }

// MarshalBinary encodes s compactly for the metadata store: a uvarint count,
// then per interval two uvarints, the gap from the previous interval's End
// (from 0 for the first) and the length. The invariant makes every gap after
// the first and every length at least 1. The encoding is deterministic: equal
// sets give equal bytes.
func (s Set) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+4*len(s.rs))
	b = binary.AppendUvarint(b, uint64(len(s.rs)))
	var end int64
	for _, r := range s.rs {
		b = binary.AppendUvarint(b, uint64(r.Start-end))
		b = binary.AppendUvarint(b, uint64(r.End-r.Start))
		end = r.End
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote into s. It accepts only
// the exact bytes MarshalBinary would produce for a valid Set: it rejects
// truncated or non-minimal varints, zero lengths, zero gaps between intervals
// (uncoalesced), offsets past MaxInt64, trailing bytes, and a count larger than
// the input could hold, so it allocates O(len(b)) at most. Failures wrap
// ErrInvalidSet and leave s unchanged.
func (s *Set) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	if n > uint64(len(d.b))/2 { // each interval takes at least two bytes
		return invalidSet("count exceeds input")
	}
	rs := make([]Range, 0, n)
	var end int64
	for i := range n {
		r, err := d.interval(end, i == 0)
		if err != nil {
			return err
		}
		rs, end = append(rs, r), r.End
	}
	if len(d.b) != 0 {
		return invalidSet("trailing bytes")
	}
	s.rs = rs
	return nil
}

// decoder reads the MarshalBinary format from b, consuming it.
type decoder struct{ b []byte }

// interval reads one (gap, length) pair following an interval that ended at
// prevEnd. Only the first interval may have a zero gap.
func (d *decoder) interval(prevEnd int64, first bool) (Range, error) {
	gap, err := d.uvarint()
	if err != nil {
		return Range{}, err
	}
	length, err := d.uvarint()
	if err != nil {
		return Range{}, err
	}
	if length == 0 || (gap == 0 && !first) {
		return Range{}, invalidSet("empty or uncoalesced interval")
	}
	start, ok := addOffset(prevEnd, gap)
	if !ok {
		return Range{}, invalidSet("offset overflow")
	}
	end, ok := addOffset(start, length)
	if !ok {
		return Range{}, invalidSet("offset overflow")
	}
	return Range{Start: start, End: end}, nil
}

// uvarint reads one minimally encoded uvarint. Non-minimal forms (such as
// 0x80 0x00 for 0) are rejected so that decoding is the exact inverse of
// MarshalBinary.
func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, invalidSet("truncated or overflowing varint")
	}
	if n != uvarintLen(v) {
		return 0, invalidSet("non-minimal varint")
	}
	d.b = d.b[n:]
	return v, nil
}

// uvarintLen returns the length of the minimal uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// addOffset returns off+delta for a non-negative off, and false when the sum
// exceeds MaxInt64.
func addOffset(off int64, delta uint64) (int64, bool) {
	if delta > uint64(math.MaxInt64-off) {
		return 0, false
	}
	return off + int64(delta), true
}

// MarshalJSON encodes s as [[start,end],...] with half-open pairs, for
// metadata a human may read; an empty set is [].
func (s Set) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, r := range s.rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, r.Start, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.End, 10)
		b = append(b, ']')
	}
	return append(b, ']'), nil
}

// UnmarshalJSON decodes what MarshalJSON wrote into s. Each element must be a
// pair of integers, and the pairs must satisfy the Set invariant; data that
// does not wraps ErrInvalidSet (or is a JSON syntax error) and leaves s
// unchanged. JSON null is a no-op, as is conventional for json.Unmarshaler.
func (s *Set) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var pairs [][]int64 // not [][2]int64: encoding/json silently drops extra elements
	if err := json.Unmarshal(b, &pairs); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSet, err)
	}
	rs := make([]Range, 0, len(pairs))
	for _, p := range pairs {
		if len(p) != 2 {
			return invalidSet("element is not a [start,end] pair")
		}
		rs = append(rs, Range{Start: p[0], End: p[1]})
	}
	if err := checkRanges(rs); err != nil {
		return err
	}
	s.rs = rs
	return nil
}

// checkRanges reports whether rs satisfies the Set invariant.
func checkRanges(rs []Range) error {
	for i, r := range rs {
		if r.Start < 0 || r.Empty() {
			return invalidSet("negative or empty interval")
		}
		if i > 0 && rs[i-1].End >= r.Start {
			return invalidSet("intervals unsorted, overlapping or adjacent")
		}
	}
	return nil
}
