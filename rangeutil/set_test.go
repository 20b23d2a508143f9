package rangeutil

import (
	"slices"
	"testing"
)

// checkInvariant fails t unless s is sorted, non-empty, non-negative,
// non-overlapping and non-adjacent. It is written independently of
// checkRanges so that a bug in one cannot hide in the other.
func checkInvariant(t testing.TB, s Set) {
	t.Helper()
	for i, r := range s.rs {
		if r.Start < 0 || r.End <= r.Start {
			t.Fatalf("set %v: interval %d %v is negative or empty", s, i, r)
		}
		if i > 0 && s.rs[i-1].End >= r.Start {
			t.Fatalf("set %v: intervals %d and %d overlap, touch or are unsorted", s, i-1, i)
		}
	}
}

// setOf builds a Set by inserting rs in order.
func setOf(rs ...Range) Set {
	var s Set
	for _, r := range rs {
		s.Insert(r)
	}
	return s
}

func TestSetInsert(t *testing.T) {
	tests := []struct {
		name string
		ins  []Range
		want []Range
	}{
		{"empty set", nil, nil},
		{"one", []Range{{0, 10}}, []Range{{0, 10}}},
		{"empty range ignored", []Range{{5, 5}, {7, 3}}, nil},
		{"negative start ignored", []Range{{-1, 5}}, nil},
		{"disjoint kept sorted", []Range{{20, 30}, {0, 10}, {40, 50}}, []Range{{0, 10}, {20, 30}, {40, 50}}},
		{"adjacent after", []Range{{0, 10}, {10, 20}}, []Range{{0, 20}}},
		{"adjacent before", []Range{{10, 20}, {0, 10}}, []Range{{0, 20}}},
		{"gap of one byte stays", []Range{{0, 10}, {11, 20}}, []Range{{0, 10}, {11, 20}}},
		{"overlap left", []Range{{10, 20}, {5, 15}}, []Range{{5, 20}}},
		{"overlap right", []Range{{10, 20}, {15, 25}}, []Range{{10, 25}}},
		{"contained", []Range{{0, 100}, {10, 20}}, []Range{{0, 100}}},
		{"same", []Range{{0, 100}, {0, 100}}, []Range{{0, 100}}},
		{"containing", []Range{{10, 20}, {0, 100}}, []Range{{0, 100}}},
		{"fills gap exactly", []Range{{0, 10}, {20, 30}, {10, 20}}, []Range{{0, 30}}},
		{"spans many", []Range{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {10, 11}, {1, 7}}, []Range{{0, 7}, {10, 11}}},
		{"spans many touching ends", []Range{{5, 6}, {8, 9}, {11, 12}, {3, 5}, {6, 8}, {9, 11}}, []Range{{3, 12}}},
		{"between two, touching neither", []Range{{0, 10}, {30, 40}, {15, 25}}, []Range{{0, 10}, {15, 25}, {30, 40}}},
		{"first byte", []Range{{1, 5}, {0, 1}}, []Range{{0, 5}}},
		{"huge", []Range{{0, 1<<63 - 1}, {5, 10}}, []Range{{0, 1<<63 - 1}}},
	}
	for _, tt := range tests {
		s := setOf(tt.ins...)
		checkInvariant(t, s)
		if got := s.Ranges(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Insert(%v) = %v, want %v", tt.name, tt.ins, got, tt.want)
		}
	}
}

func TestSetRemove(t *testing.T) {
	base := []Range{{0, 10}, {20, 30}, {40, 50}}
	tests := []struct {
		name string
		rm   Range
		want []Range
	}{
		{"empty range ignored", Range{5, 5}, base},
		{"negative start ignored", Range{-5, 100}, base},
		{"in a gap", Range{10, 20}, base},
		{"past the end", Range{50, 60}, base},
		{"split middle", Range{3, 6}, []Range{{0, 3}, {6, 10}, {20, 30}, {40, 50}}},
		{"one byte", Range{5, 6}, []Range{{0, 5}, {6, 10}, {20, 30}, {40, 50}}},
		{"head", Range{0, 3}, []Range{{3, 10}, {20, 30}, {40, 50}}},
		{"tail", Range{7, 10}, []Range{{0, 7}, {20, 30}, {40, 50}}},
		{"exact interval", Range{20, 30}, []Range{{0, 10}, {40, 50}}},
		{"cover interval and gaps", Range{15, 35}, []Range{{0, 10}, {40, 50}}},
		{"across two, trimming both", Range{5, 25}, []Range{{0, 5}, {25, 30}, {40, 50}}},
		{"across three", Range{5, 45}, []Range{{0, 5}, {45, 50}}},
		{"everything", Range{0, 50}, nil},
		{"more than everything", Range{0, 1 << 40}, nil},
	}
	for _, tt := range tests {
		s := setOf(base...)
		s.Remove(tt.rm)
		checkInvariant(t, s)
		if got := s.Ranges(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v.Remove(%v) = %v, want %v", tt.name, base, tt.rm, got, tt.want)
		}
	}
}

func TestSetPointQueries(t *testing.T) {
	s := setOf(Range{10, 20}, Range{30, 40})
	tests := []struct {
		off     int64
		has     bool
		contEnd int64
		next    int64
		nextOK  bool
	}{
		{-1, false, -1, 10, true},
		{0, false, 0, 10, true},
		{9, false, 9, 10, true},
		{10, true, 20, 10, true},
		{15, true, 20, 15, true},
		{19, true, 20, 19, true},
		{20, false, 20, 30, true},
		{29, false, 29, 30, true},
		{30, true, 40, 30, true},
		{39, true, 40, 39, true},
		{40, false, 40, 0, false},
		{1000, false, 1000, 0, false},
	}
	for _, tt := range tests {
		if got := s.Has(tt.off); got != tt.has {
			t.Errorf("%v.Has(%d) = %v, want %v", s, tt.off, got, tt.has)
		}
		if got := s.ContiguousEnd(tt.off); got != tt.contEnd {
			t.Errorf("%v.ContiguousEnd(%d) = %d, want %d", s, tt.off, got, tt.contEnd)
		}
		if got, ok := s.NextPresent(tt.off); got != tt.next || ok != tt.nextOK {
			t.Errorf("%v.NextPresent(%d) = %d, %v, want %d, %v", s, tt.off, got, ok, tt.next, tt.nextOK)
		}
	}
}

func TestSetRangeQueries(t *testing.T) {
	s := setOf(Range{10, 20}, Range{30, 40})
	tests := []struct {
		r        Range
		contains bool
		missing  []Range
	}{
		{Range{0, 50}, false, []Range{{0, 10}, {20, 30}, {40, 50}}},
		{Range{10, 40}, false, []Range{{20, 30}}},
		{Range{10, 20}, true, nil},
		{Range{12, 18}, true, nil},
		{Range{19, 20}, true, nil},
		{Range{19, 21}, false, []Range{{20, 21}}},
		{Range{9, 10}, false, []Range{{9, 10}}},
		{Range{9, 11}, false, []Range{{9, 10}}},
		{Range{20, 30}, false, []Range{{20, 30}}},
		{Range{15, 35}, false, []Range{{20, 30}}},
		{Range{35, 60}, false, []Range{{40, 60}}},
		{Range{0, 5}, false, []Range{{0, 5}}},
		{Range{50, 60}, false, []Range{{50, 60}}},
		{Range{15, 15}, true, nil}, // empty
		{Range{25, 25}, true, nil}, // empty, in a gap
		{Range{20, 10}, true, nil}, // inverted is empty
	}
	for _, tt := range tests {
		if got := s.Contains(tt.r); got != tt.contains {
			t.Errorf("%v.Contains(%v) = %v, want %v", s, tt.r, got, tt.contains)
		}
		if got := s.Missing(tt.r); !slices.Equal(got, tt.missing) {
			t.Errorf("%v.Missing(%v) = %v, want %v", s, tt.r, got, tt.missing)
		}
		wantFirst, wantOK := Range{}, len(tt.missing) > 0
		if wantOK {
			wantFirst = tt.missing[0]
		}
		if got, ok := s.FirstMissing(tt.r); got != wantFirst || ok != wantOK {
			t.Errorf("%v.FirstMissing(%v) = %v, %v, want %v, %v", s, tt.r, got, ok, wantFirst, wantOK)
		}
	}
}

func TestSetZeroValue(t *testing.T) {
	var s Set
	if s.Has(0) || s.Len() != 0 || s.Covered() != 0 || !s.Contains(Range{}) || s.Contains(Range{0, 1}) {
		t.Errorf("zero Set is not empty: %v", s)
	}
	if got := s.Missing(Range{0, 5}); !slices.Equal(got, []Range{{0, 5}}) {
		t.Errorf("Set{}.Missing([0,5)) = %v, want [[0,5)]", got)
	}
	if _, ok := s.NextPresent(0); ok {
		t.Errorf("Set{}.NextPresent(0) reports a byte")
	}
	if got := s.String(); got != "{}" {
		t.Errorf("Set{}.String() = %q, want {}", got)
	}
	s.Remove(Range{0, 10})
	checkInvariant(t, s)
}

func TestSetCoveredLenString(t *testing.T) {
	s := setOf(Range{0, 10}, Range{20, 30}, Range{100, 101})
	if got := s.Covered(); got != 21 {
		t.Errorf("%v.Covered() = %d, want 21", s, got)
	}
	if got := s.Len(); got != 3 {
		t.Errorf("%v.Len() = %d, want 3", s, got)
	}
	if got, want := s.String(), "[0,10) [20,30) [100,101)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestSetCopiesDoNotAlias checks that Ranges and Clone hand out storage that
// the original does not share.
func TestSetCopiesDoNotAlias(t *testing.T) {
	s := setOf(Range{0, 10}, Range{20, 30})
	rs := s.Ranges()
	rs[0] = Range{100, 200}
	c := s.Clone()
	c.Insert(Range{5, 25})
	c.Remove(Range{0, 1})
	if want := setOf(Range{0, 10}, Range{20, 30}); !s.Equal(want) {
		t.Errorf("original changed to %v, want %v", s, want)
	}
	if want := setOf(Range{1, 30}); !c.Equal(want) {
		t.Errorf("clone = %v, want %v", c, want)
	}
}

func TestSetEqual(t *testing.T) {
	a := setOf(Range{0, 10}, Range{10, 20})
	b := setOf(Range{5, 20}, Range{0, 6})
	if !a.Equal(b) {
		t.Errorf("%v.Equal(%v) = false, want true", a, b)
	}
	var empty Set
	emptied := setOf(Range{0, 5})
	emptied.Remove(Range{0, 5})
	if !empty.Equal(emptied) {
		t.Errorf("zero Set not Equal to emptied Set %v", emptied)
	}
	if a.Equal(empty) {
		t.Errorf("%v.Equal({}) = true", a)
	}
}
