package rangeutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestSetMarshalBinary(t *testing.T) {
	tests := []struct {
		set  Set
		want []byte
	}{
		{Set{}, []byte{0}},
		{setOf(Range{0, 10}), []byte{1, 0, 10}},
		{setOf(Range{5, 10}, Range{20, 300}), []byte{2, 5, 5, 10, 0x98, 0x02}},
	}
	for _, tt := range tests {
		got, err := tt.set.MarshalBinary()
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%v.MarshalBinary() = %x, %v, want %x, nil", tt.set, got, err, tt.want)
		}
		var back Set
		if err := back.UnmarshalBinary(got); err != nil || !back.Equal(tt.set) {
			t.Errorf("UnmarshalBinary(%x) = %v, %v, want %v, nil", got, back, err, tt.set)
		}
	}
}

func TestSetMarshalBinaryExtremes(t *testing.T) {
	const max = 1<<63 - 1
	s := setOf(Range{0, 1}, Range{max - 2, max})
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Set
	if err := back.UnmarshalBinary(b); err != nil || !back.Equal(s) {
		t.Errorf("round trip of %v = %v, %v", s, back, err)
	}
}

func TestSetUnmarshalBinaryRejects(t *testing.T) {
	maxVarint := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f} // MaxInt64
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty input", nil},
		{"trailing bytes", []byte{0, 0}},
		{"trailing after interval", []byte{1, 0, 10, 0}},
		{"truncated interval", []byte{1, 0}},
		{"truncated varint", []byte{1, 0, 0x80}},
		{"count larger than input", []byte{3, 0, 1, 1, 1}},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"varint overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"non-minimal count", []byte{0x80, 0x00}},
		{"non-minimal length", []byte{1, 0, 0x8a, 0x00}},
		{"zero length", []byte{1, 0, 0}},
		{"zero gap between intervals", []byte{2, 0, 5, 0, 5}},
		{"start overflow", append(append([]byte{2, 0, 1}, maxVarint...), 1)},
		{"end overflow", append([]byte{1, 1}, maxVarint...)},
	}
	for _, tt := range tests {
		s := setOf(Range{7, 8})
		err := s.UnmarshalBinary(tt.in)
		if !errors.Is(err, ErrInvalidSet) {
			t.Errorf("%s: UnmarshalBinary(%x) error = %v, want ErrInvalidSet", tt.name, tt.in, err)
		}
		if want := setOf(Range{7, 8}); !s.Equal(want) {
			t.Errorf("%s: failed UnmarshalBinary changed the set to %v", tt.name, s)
		}
	}
}

func TestSetMarshalJSON(t *testing.T) {
	tests := []struct {
		set  Set
		want string
	}{
		{Set{}, `[]`},
		{setOf(Range{0, 10}), `[[0,10]]`},
		{setOf(Range{0, 10}, Range{20, 30}), `[[0,10],[20,30]]`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.set)
		if err != nil || string(got) != tt.want {
			t.Errorf("json.Marshal(%v) = %s, %v, want %s, nil", tt.set, got, err, tt.want)
		}
		var back Set
		if err := json.Unmarshal(got, &back); err != nil || !back.Equal(tt.set) {
			t.Errorf("json.Unmarshal(%s) = %v, %v, want %v, nil", got, back, err, tt.set)
		}
	}
}

// TestSetJSONField checks the methods work on a Set inside a struct, which is
// how metadata embeds it.
func TestSetJSONField(t *testing.T) {
	type meta struct {
		Present Set `json:"present"`
	}
	in := meta{Present: setOf(Range{1, 2}, Range{4, 8})}
	b, err := json.Marshal(in)
	if err != nil || string(b) != `{"present":[[1,2],[4,8]]}` {
		t.Fatalf("json.Marshal(meta) = %s, %v", b, err)
	}
	var out meta
	if err := json.Unmarshal(b, &out); err != nil || !out.Present.Equal(in.Present) {
		t.Errorf("json.Unmarshal(%s) = %v, %v, want %v", b, out.Present, err, in.Present)
	}
	if err := json.Unmarshal([]byte(`{"present":null}`), &out); err != nil || !out.Present.Equal(in.Present) {
		t.Errorf("null changed the set to %v, %v", out.Present, err)
	}
}

func TestSetUnmarshalJSONRejects(t *testing.T) {
	for _, in := range []string{
		``,
		`{}`,
		`[1,2]`,
		`[[1]]`,
		`[[1,2,3]]`,
		`[[1.5,2]]`,
		`[["1",2]]`,
		`[[-1,2]]`,
		`[[2,2]]`,
		`[[3,2]]`,
		`[[0,10],[10,20]]`, // adjacent
		`[[0,10],[5,20]]`,  // overlapping
		`[[20,30],[0,10]]`, // unsorted
		`[[0,9223372036854775808]]`,
		`[[0,1]] x`,
	} {
		s := setOf(Range{7, 8})
		if err := s.UnmarshalJSON([]byte(in)); !errors.Is(err, ErrInvalidSet) {
			t.Errorf("UnmarshalJSON(%s) error = %v, want ErrInvalidSet", in, err)
		}
		if want := setOf(Range{7, 8}); !s.Equal(want) {
			t.Errorf("failed UnmarshalJSON(%s) changed the set to %v", in, s)
		}
	}
}
