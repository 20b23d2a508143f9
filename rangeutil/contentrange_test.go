package rangeutil

import (
	"errors"
	"strings"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	const max = 1<<63 - 1
	tests := []struct {
		in   string
		want ContentRange
		err  error
	}{
		// Valid.
		{in: "bytes 0-99/1000", want: ContentRange{Range: Range{0, 100}, Size: 1000}},
		{in: "bytes 0-0/1", want: ContentRange{Range: Range{0, 1}, Size: 1}},
		{in: "bytes 999-999/1000", want: ContentRange{Range: Range{999, 1000}, Size: 1000}},
		{in: "bytes 42-1233/*", want: ContentRange{Range: Range{42, 1234}, Size: -1}},
		{in: "BYTES 1-2/3", want: ContentRange{Range: Range{1, 3}, Size: 3}},
		{in: "bytes 00-09/010", want: ContentRange{Range: Range{0, 10}, Size: 10}},
		{in: "bytes 0-9223372036854775806/9223372036854775807", want: ContentRange{Range: Range{0, max}, Size: max}},
		{in: "bytes */1000", want: ContentRange{Size: 1000, Unsatisfied: true}},
		{in: "bytes */0", want: ContentRange{Size: 0, Unsatisfied: true}},
		// Lies and invalid ranges (RFC 9110 §14.4).
		{in: "bytes 0-1000/1000", err: ErrSyntax}, // last >= size
		{in: "bytes 0-0/0", err: ErrSyntax},
		{in: "bytes 5-4/10", err: ErrSyntax}, // last < first
		{in: "bytes 0-9223372036854775807/*", err: ErrSyntax},
		{in: "bytes 0-9223372036854775808/*", err: ErrSyntax},
		// Garbage.
		{in: "", err: ErrSyntax},
		{in: "bytes", err: ErrSyntax},
		{in: "bytes ", err: ErrSyntax},
		{in: "bytes=0-1/2", err: ErrSyntax},
		{in: "bytes  0-1/2", err: ErrSyntax},
		{in: "bytes\t0-1/2", err: ErrSyntax},
		{in: " bytes 0-1/2", err: ErrSyntax},
		{in: "bytes 0-1/2 ", err: ErrSyntax},
		{in: "bytes 0 -1/2", err: ErrSyntax},
		{in: "bytes 0-1 /2", err: ErrSyntax},
		{in: "bytes 0-1/ 2", err: ErrSyntax},
		{in: "bytes 0-1", err: ErrSyntax},
		{in: "bytes 0-/2", err: ErrSyntax},
		{in: "bytes -1/2", err: ErrSyntax},
		{in: "bytes 1/2", err: ErrSyntax},
		{in: "bytes 0-1-2/3", err: ErrSyntax},
		{in: "bytes 0-1/2/3", err: ErrSyntax},
		{in: "bytes 0-1/", err: ErrSyntax},
		{in: "bytes 0-1/**", err: ErrSyntax},
		{in: "bytes 0-1/-1", err: ErrSyntax},
		{in: "bytes +0-1/2", err: ErrSyntax},
		{in: "bytes */*", err: ErrSyntax},
		{in: "bytes */", err: ErrSyntax},
		{in: "bytes *", err: ErrSyntax},
		{in: "bytes */1/2", err: ErrSyntax},
		{in: "bytes */-1", err: ErrSyntax},
		{in: "bytes 0-1,3-4/10", err: ErrSyntax},
		{in: "by tes 0-1/2", err: ErrUnit}, // unit "by" is a token, rest is garbage after it
		{in: "b@tes 0-1/2", err: ErrSyntax},
		// Unit.
		{in: "items 0-1/2", err: ErrUnit},
		{in: "none */5", err: ErrUnit},
		// Too long.
		{in: "bytes 0-1/" + strings.Repeat("9", MaxContentRangeLen), err: ErrTooLong},
	}
	for _, tt := range tests {
		got, err := ParseContentRange(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("ParseContentRange(%q) = %+v, %v, want %+v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestFormatContentRange(t *testing.T) {
	tests := []struct {
		r    Range
		size int64
		want string
	}{
		{Range{0, 100}, 1000, "bytes 0-99/1000"},
		{Range{999, 1000}, 1000, "bytes 999-999/1000"},
		{Range{0, 100}, -1, "bytes 0-99/*"},
		{Range{0, 1000}, 1000, "bytes 0-999/1000"},
		{Range{0, 1001}, 1000, ""}, // past the end
		{Range{5, 5}, 1000, ""},
		{Range{-1, 5}, 1000, ""},
	}
	for _, tt := range tests {
		got := FormatContentRange(tt.r, tt.size)
		if got != tt.want {
			t.Errorf("FormatContentRange(%v, %d) = %q, want %q", tt.r, tt.size, got, tt.want)
		}
		if got == "" {
			continue
		}
		want := ContentRange{Range: tt.r, Size: tt.size}
		if back, err := ParseContentRange(got); err != nil || back != want {
			t.Errorf("ParseContentRange(%q) = %+v, %v, want %+v, nil", got, back, err, want)
		}
	}
}

func TestFormatUnsatisfied(t *testing.T) {
	tests := []struct {
		size int64
		want string
	}{
		{1000, "bytes */1000"},
		{0, "bytes */0"},
		{-1, ""},
	}
	for _, tt := range tests {
		got := FormatUnsatisfied(tt.size)
		if got != tt.want {
			t.Errorf("FormatUnsatisfied(%d) = %q, want %q", tt.size, got, tt.want)
		}
		if got == "" {
			continue
		}
		want := ContentRange{Size: tt.size, Unsatisfied: true}
		if back, err := ParseContentRange(got); err != nil || back != want {
			t.Errorf("ParseContentRange(%q) = %+v, %v, want %+v, nil", got, back, err, want)
		}
	}
}
