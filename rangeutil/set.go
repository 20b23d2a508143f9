package rangeutil

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Set is a set of byte offsets held as disjoint half-open intervals: for
// resumeproxy, the bytes of a sparse cache file that are present and verified.
//
// Invariant: the intervals are sorted by Start, non-empty, with Start >= 0,
// and neither overlap nor touch (a.End < b.Start for neighbours a, b), so
// every set of offsets has exactly one representation. Insert and Remove are
// the only mutators and keep it; the decoders reject input that breaks it.
// Because the form is unique, Equal is a plain comparison and MarshalBinary is
// deterministic.
//
// The zero value is an empty set ready to use. Methods with value receivers
// only read. Like a slice, a Set copied by assignment shares its storage with
// the original; use Clone before mutating a copy. A Set is not safe for
// concurrent mutation; the owner's lock guards it.
type Set struct {
	rs []Range // see the invariant above
}

// Insert adds the bytes of r to s, merging with every interval r overlaps or
// touches. It is the only mutator that grows s. An empty r, or one with
// Start < 0 (a programming error), is ignored. It costs O(log n + k) for k
// merged intervals, plus one memmove of the tail when the count changes;
// appending past the last interval, the download case, is amortized O(1).
func (s *Set) Insert(r Range) {
	if r.Empty() || r.Start < 0 {
		return
	}
	// [i, j) are the intervals that overlap or touch r.
	i := sort.Search(len(s.rs), func(k int) bool { return s.rs[k].End >= r.Start })
	j := i + sort.Search(len(s.rs)-i, func(k int) bool { return s.rs[i+k].Start > r.End })
	if i < j {
		r.Start = min(r.Start, s.rs[i].Start)
		r.End = max(r.End, s.rs[j-1].End)
	}
	s.rs = slices.Replace(s.rs, i, j, r)
}

// Remove deletes the bytes of r from s, splitting an interval that r cuts in
// the middle. The cache uses it to forget blocks that failed verification. An
// empty r, or one with Start < 0 (a programming error), is ignored.
func (s *Set) Remove(r Range) {
	if r.Empty() || r.Start < 0 {
		return
	}
	// [i, j) are the intervals sharing at least one byte with r.
	i := s.index(r.Start)
	j := i + sort.Search(len(s.rs)-i, func(k int) bool { return s.rs[i+k].Start >= r.End })
	if i == j {
		return
	}
	var keep [2]Range
	kept := keep[:0]
	if first := s.rs[i]; first.Start < r.Start {
		kept = append(kept, Range{Start: first.Start, End: r.Start})
	}
	if last := s.rs[j-1]; last.End > r.End {
		kept = append(kept, Range{Start: r.End, End: last.End})
	}
	s.rs = slices.Replace(s.rs, i, j, kept...)
}

// index returns the index of the first interval ending after off: the one
// holding off if there is one, else the next interval to the right, else
// len(s.rs).
func (s Set) index(off int64) int {
	return sort.Search(len(s.rs), func(k int) bool { return s.rs[k].End > off })
}

// Has reports whether byte off is present.
func (s Set) Has(off int64) bool {
	i := s.index(off)
	return i < len(s.rs) && s.rs[i].Start <= off
}

// Contains reports whether every byte of r is present; an empty r is
// trivially contained. Because s is coalesced, one interval must cover r.
func (s Set) Contains(r Range) bool {
	if r.Empty() {
		return true
	}
	i := s.index(r.Start)
	return i < len(s.rs) && s.rs[i].Start <= r.Start && r.End <= s.rs[i].End
}

// ContiguousEnd returns the end of the interval holding off, so that
// [off, ContiguousEnd(off)) is the longest run of present bytes from off; it
// returns off itself when off is not present. A reader serves that run from
// disk before it must wait for the network.
func (s Set) ContiguousEnd(off int64) int64 {
	i := s.index(off)
	if i < len(s.rs) && s.rs[i].Start <= off {
		return s.rs[i].End
	}
	return off
}

// NextPresent returns the first present offset >= off (off itself when
// present), and false when no byte at or after off is present.
func (s Set) NextPresent(off int64) (int64, bool) {
	i := s.index(off)
	if i == len(s.rs) {
		return 0, false
	}
	return max(off, s.rs[i].Start), true
}

// Missing returns the gaps of s inside r, sorted and coalesced: the byte
// ranges the proxy must still fetch to serve r. It returns nil when r is
// empty or fully present.
func (s Set) Missing(r Range) []Range {
	if r.Empty() {
		return nil
	}
	var gaps []Range
	cur := r.Start
	for i := s.index(r.Start); i < len(s.rs) && s.rs[i].Start < r.End; i++ {
		if s.rs[i].Start > cur {
			gaps = append(gaps, Range{Start: cur, End: s.rs[i].Start})
		}
		cur = s.rs[i].End
	}
	if cur < r.End {
		gaps = append(gaps, Range{Start: cur, End: r.End})
	}
	return gaps
}

// FirstMissing returns the first gap of s inside r, the next range to fetch,
// and false when r is empty or fully present.
func (s Set) FirstMissing(r Range) (Range, bool) {
	start := s.ContiguousEnd(r.Start)
	if start >= r.End {
		return Range{}, false
	}
	end := r.End
	if next, ok := s.NextPresent(start); ok && next < end {
		end = next
	}
	return Range{Start: start, End: end}, true
}

// Covered returns the number of bytes present.
func (s Set) Covered() int64 {
	var n int64
	for _, r := range s.rs {
		n += r.Len()
	}
	return n
}

// Ranges returns a copy of the intervals of s, sorted and coalesced.
func (s Set) Ranges() []Range { return slices.Clone(s.rs) }

// Clone returns a copy of s that shares no storage with it.
func (s Set) Clone() Set { return Set{rs: slices.Clone(s.rs)} }

// Equal reports whether s and o hold the same bytes. The invariant makes the
// representation unique, so comparing intervals suffices.
func (s Set) Equal(o Set) bool { return slices.Equal(s.rs, o.rs) }

// Len returns the number of intervals in s (not the number of bytes; see
// Covered).
func (s Set) Len() int { return len(s.rs) }

// String formats s for logs as half-open intervals, e.g. "[0,10) [20,30)",
// or "{}" when empty.
func (s Set) String() string {
	if len(s.rs) == 0 {
		return "{}"
	}
	var b strings.Builder
	for i, r := range s.rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('[')
		b.WriteString(strconv.FormatInt(r.Start, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(r.End, 10))
		b.WriteByte(')')
	}
	return b.String()
}
