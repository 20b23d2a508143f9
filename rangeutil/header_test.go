package rangeutil

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in   string
		want []Spec
		err  error
	}{
		// Valid forms.
		{in: "bytes=0-99", want: []Spec{{0, 99}}},
		{in: "bytes=0-0", want: []Spec{{0, 0}}},
		{in: "bytes=100-", want: []Spec{{100, -1}}},
		{in: "bytes=-500", want: []Spec{{-1, 500}}},
		{in: "bytes=-0", want: []Spec{{-1, 0}}},
		{in: "bytes=0-99,200-,-5", want: []Spec{{0, 99}, {200, -1}, {-1, 5}}},
		{in: "bytes=500-600,0-1000", want: []Spec{{500, 600}, {0, 1000}}},
		{in: "bytes=007-010", want: []Spec{{7, 10}}},
		{in: "bytes=0-9223372036854775807", want: []Spec{{0, 1<<63 - 1}}},
		// Unit case (RFC 9110 §14.1).
		{in: "BYTES=1-2", want: []Spec{{1, 2}}},
		{in: "Bytes=1-2", want: []Spec{{1, 2}}},
		// Whitespace and empty elements (RFC 9110 §5.6.1).
		{in: "bytes= 1-2 , 3-4\t", want: []Spec{{1, 2}, {3, 4}}},
		{in: "bytes=,1-2,,\t, 3-,", want: []Spec{{1, 2}, {3, -1}}},
		// ErrSyntax.
		{in: "", err: ErrSyntax},
		{in: "bytes", err: ErrSyntax},
		{in: "bytes=", err: ErrSyntax},
		{in: "bytes= , ,", err: ErrSyntax},
		{in: "=0-1", err: ErrSyntax},
		{in: " bytes=0-1", err: ErrSyntax},
		{in: "bytes =0-1", err: ErrSyntax},
		{in: "bytes=-", err: ErrSyntax},
		{in: "bytes=1", err: ErrSyntax},
		{in: "bytes=1-2-3", err: ErrSyntax},
		{in: "bytes=--1", err: ErrSyntax},
		{in: "bytes=+1-2", err: ErrSyntax},
		{in: "bytes=1-+2", err: ErrSyntax},
		{in: "bytes=-+2", err: ErrSyntax},
		{in: "bytes=1 -2", err: ErrSyntax},
		{in: "bytes=1- 2", err: ErrSyntax},
		{in: "bytes=1 2-3", err: ErrSyntax},
		{in: "bytes=5-4", err: ErrSyntax},
		{in: "bytes=0-1,5-4", err: ErrSyntax},
		{in: "bytes=0x1-2", err: ErrSyntax},
		{in: "bytes=9223372036854775808-", err: ErrSyntax},
		{in: "bytes=0-9223372036854775808", err: ErrSyntax},
		{in: "bytes=-99999999999999999999", err: ErrSyntax},
		{in: "bytes=0-1;2-3", err: ErrSyntax},
		{in: "bytes=0-1=2", err: ErrSyntax},
		{in: "bytes=0-1\n", err: ErrSyntax},
		{in: "bytes=\u0661-2", err: ErrSyntax}, // ARABIC-INDIC DIGIT ONE is not DIGIT
		// ErrUnit.
		{in: "items=0-1", err: ErrUnit},
		{in: "bytesx=0-1", err: ErrUnit},
		{in: "none=whatever", err: ErrUnit},
		// ErrTooLong and ErrTooMany.
		{in: "bytes=0-" + strings.Repeat("0", MaxRangeHeaderLen), err: ErrTooLong},
		{in: "bytes=" + strings.Repeat("0-1,", MaxRanges) + "0-1", err: ErrTooMany},
	}
	for _, tt := range tests {
		got, err := ParseRange(tt.in)
		if !errors.Is(err, tt.err) || !slices.Equal(got, tt.want) {
			t.Errorf("ParseRange(%q) = %v, %v, want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestParseRangeLimits checks both limits at their exact boundary.
func TestParseRangeLimits(t *testing.T) {
	atMax := "bytes=" + strings.Repeat("0-1,", MaxRanges-1) + "0-1,,,"
	if got, err := ParseRange(atMax); err != nil || len(got) != MaxRanges {
		t.Errorf("ParseRange(%d specs) = %d specs, %v, want %d, nil", MaxRanges, len(got), err, MaxRanges)
	}
	prefix := "bytes=0-"
	long := prefix + strings.Repeat("0", MaxRangeHeaderLen-len(prefix))
	if got, err := ParseRange(long); err != nil || !slices.Equal(got, []Spec{{0, 0}}) {
		t.Errorf("ParseRange(%d bytes) = %v, %v, want [{0 0}], nil", len(long), got, err)
	}
	if _, err := ParseRange(long + "0"); !errors.Is(err, ErrTooLong) {
		t.Errorf("ParseRange(%d bytes) error = %v, want ErrTooLong", len(long)+1, err)
	}
}

func TestSpecResolve(t *testing.T) {
	const max = 1<<63 - 1
	tests := []struct {
		spec Spec
		size int64
		want Range
		ok   bool
	}{
		{Spec{0, 99}, 1000, Range{0, 100}, true},
		{Spec{0, 0}, 1, Range{0, 1}, true},
		{Spec{999, 999}, 1000, Range{999, 1000}, true},
		{Spec{500, 2000}, 1000, Range{500, 1000}, true}, // last clamped to size-1
		{Spec{0, max}, 1000, Range{0, 1000}, true},
		{Spec{0, 999}, 1000, Range{0, 1000}, true},
		{Spec{0, 1000}, 1000, Range{0, 1000}, true},
		{Spec{1000, 1000}, 1000, Range{}, false}, // first >= size
		{Spec{1000, -1}, 1000, Range{}, false},
		{Spec{5000, -1}, 1000, Range{}, false},
		{Spec{0, -1}, 1000, Range{0, 1000}, true},
		{Spec{999, -1}, 1000, Range{999, 1000}, true},
		{Spec{-1, 1}, 1000, Range{999, 1000}, true},
		{Spec{-1, 500}, 1000, Range{500, 1000}, true},
		{Spec{-1, 1000}, 1000, Range{0, 1000}, true},
		{Spec{-1, 5000}, 1000, Range{0, 1000}, true}, // suffix > size: whole
		{Spec{-1, max}, 1000, Range{0, 1000}, true},
		{Spec{-1, 0}, 1000, Range{}, false}, // suffix length 0
		{Spec{0, 0}, 0, Range{}, false},     // size 0
		{Spec{0, -1}, 0, Range{}, false},
		{Spec{-1, 5}, 0, Range{}, false},
		{Spec{0, 5}, -1, Range{}, false},
		{Spec{0, max}, max, Range{0, max}, true},
		{Spec{-1, 1}, max, Range{max - 1, max}, true},
		// Invalid specs never resolve.
		{Spec{5, 4}, 1000, Range{}, false},
		{Spec{-2, 5}, 1000, Range{}, false},
		{Spec{-1, -1}, 1000, Range{}, false},
		{Spec{3, -7}, 1000, Range{}, false},
	}
	for _, tt := range tests {
		got, ok := tt.spec.Resolve(tt.size)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%#v.Resolve(%d) = %v, %v, want %v, %v", tt.spec, tt.size, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResolveAll(t *testing.T) {
	specs := []Spec{{900, -1}, {0, 9}, {2000, 3000}, {-1, 0}, {-1, 50}}
	want := []Range{{900, 1000}, {0, 10}, {950, 1000}}
	if got := ResolveAll(specs, 1000); !slices.Equal(got, want) {
		t.Errorf("ResolveAll(%v, 1000) = %v, want %v", specs, got, want)
	}
	if got := ResolveAll([]Spec{{1000, -1}}, 1000); got != nil {
		t.Errorf("ResolveAll(1000-, 1000) = %v, want nil", got)
	}
}

func TestSpecString(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{0, 99}, "0-99"},
		{Spec{7, 7}, "7-7"},
		{Spec{100, -1}, "100-"},
		{Spec{-1, 0}, "-0"},
		{Spec{-1, 500}, "-500"},
		{Spec{5, 4}, "invalid{5,4}"},
		{Spec{-5, 3}, "invalid{-5,3}"},
	}
	for _, tt := range tests {
		if got := tt.spec.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

func TestFormatSpecs(t *testing.T) {
	tests := []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{{0, 99}, {200, -1}}, "bytes=0-99,200-"},
		{[]Spec{{-1, 5}}, "bytes=-5"},
		{nil, ""},
		{[]Spec{{0, 1}, {3, -7}}, ""},
	}
	for _, tt := range tests {
		got := FormatSpecs(tt.specs)
		if got != tt.want {
			t.Errorf("FormatSpecs(%v) = %q, want %q", tt.specs, got, tt.want)
		}
		if got == "" {
			continue
		}
		back, err := ParseRange(got)
		if err != nil || !slices.Equal(back, tt.specs) {
			t.Errorf("ParseRange(%q) = %v, %v, want %v, nil", got, back, err, tt.specs)
		}
	}
}

func TestHeaderFor(t *testing.T) {
	tests := []struct {
		r    Range
		want string
	}{
		{Range{0, 100}, "bytes=0-99"},
		{Range{5, 6}, "bytes=5-5"},
		{Range{0, 1<<63 - 1}, "bytes=0-9223372036854775806"},
		{Range{5, 5}, ""},
		{Range{6, 5}, ""},
		{Range{-1, 5}, ""},
	}
	for _, tt := range tests {
		if got := HeaderFor(tt.r); got != tt.want {
			t.Errorf("HeaderFor(%v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// TestHeaderForRoundTrip checks that HeaderFor asks for exactly r: parsing
// the header and resolving it against any size >= r.End gives r back.
func TestHeaderForRoundTrip(t *testing.T) {
	for _, r := range []Range{{0, 1}, {0, 100}, {99, 100}, {12345, 67890}} {
		specs, err := ParseRange(HeaderFor(r))
		if err != nil || len(specs) != 1 {
			t.Fatalf("ParseRange(HeaderFor(%v)) = %v, %v", r, specs, err)
		}
		for _, size := range []int64{r.End, r.End + 1, 1 << 40} {
			if got, ok := specs[0].Resolve(size); !ok || got != r {
				t.Errorf("Resolve(HeaderFor(%v), %d) = %v, %v, want %v, true", r, size, got, ok, r)
			}
		}
	}
}

func TestHeaderFrom(t *testing.T) {
	tests := []struct {
		start int64
		want  string
	}{
		{0, "bytes=0-"},
		{4096, "bytes=4096-"},
		{-1, ""},
	}
	for _, tt := range tests {
		if got := HeaderFrom(tt.start); got != tt.want {
			t.Errorf("HeaderFrom(%d) = %q, want %q", tt.start, got, tt.want)
		}
	}
}
