package testorigin

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		in   []string
		want httpRange
		res  rangeResult
	}{
		{nil, httpRange{}, rangeIgnore},
		{[]string{"bytes=0-0"}, httpRange{0, 1}, rangeOne},
		{[]string{"bytes=10-19"}, httpRange{10, 20}, rangeOne},
		{[]string{"BYTES=10-19"}, httpRange{10, 20}, rangeOne},
		{[]string{" bytes = 10-19 "}, httpRange{10, 20}, rangeOne},
		{[]string{"bytes=990-"}, httpRange{990, 1000}, rangeOne},
		{[]string{"bytes=999-5000"}, httpRange{999, 1000}, rangeOne},
		{[]string{"bytes=0-9223372036854775807"}, httpRange{0, 1000}, rangeOne},
		{[]string{"bytes=-10"}, httpRange{990, 1000}, rangeOne},
		{[]string{"bytes=-5000"}, httpRange{0, 1000}, rangeOne},
		{[]string{"bytes=1000-"}, httpRange{}, rangeUnsatisfiable},
		{[]string{"bytes=1000-1001"}, httpRange{}, rangeUnsatisfiable},
		{[]string{"bytes=-0"}, httpRange{}, rangeUnsatisfiable},
		{[]string{"bytes=0-1,5-6"}, httpRange{}, rangeIgnore},
		{[]string{"bytes=0-1", "bytes=5-6"}, httpRange{}, rangeIgnore},
		{[]string{"bytes=5-4"}, httpRange{}, rangeIgnore},
		{[]string{"bytes=-"}, httpRange{}, rangeIgnore},
		{[]string{"bytes=+1-2"}, httpRange{}, rangeIgnore},
		{[]string{"bytes=1-+2"}, httpRange{}, rangeIgnore},
		{[]string{"bytes=99999999999999999999-"}, httpRange{}, rangeIgnore},
		{[]string{"items=0-1"}, httpRange{}, rangeIgnore},
		{[]string{"bytes 0-1"}, httpRange{}, rangeIgnore},
	} {
		got, res := parseRange(tc.in, size)
		if got != tc.want || res != tc.res {
			t.Errorf("parseRange(%q, %d) = %v, %v, want %v, %v", tc.in, size, got, res, tc.want, tc.res)
		}
	}
	if _, res := parseRange([]string{"bytes=0-"}, 0); res != rangeUnsatisfiable {
		t.Errorf("parseRange(bytes=0-, 0) = %v, want unsatisfiable", res)
	}
	if _, res := parseRange([]string{"bytes=-1"}, 0); res != rangeUnsatisfiable {
		t.Errorf("parseRange(bytes=-1, 0) = %v, want unsatisfiable", res)
	}
}

func TestContentRangeFormat(t *testing.T) {
	r := httpRange{10, 20}
	if got, want := r.contentRange(100, 0), "bytes 10-19/100"; got != want {
		t.Errorf("contentRange = %q, want %q", got, want)
	}
	if got, want := r.contentRange(100, -3), "bytes 7-16/100"; got != want {
		t.Errorf("contentRange(shift -3) = %q, want %q", got, want)
	}
}

func TestDecide(t *testing.T) {
	lm := time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return lm.Add(d).Format(http.TimeFormat) }
	strong := representation{size: 100, etag: `"v1-100"`, lastModified: lm}
	weak := representation{size: 100, etag: `W/"v1-100"`}
	lmOnly := representation{size: 100, lastModified: lm}
	none := representation{size: 100}
	noRange := strong
	noRange.ignoreRange = true
	for _, tc := range []struct {
		name   string
		method string
		rep    representation
		h      []string // name, value pairs
		want   plan
	}{
		{"plain", "GET", strong, nil, plan{200, httpRange{0, 100}}},
		{"range", "GET", strong, []string{"Range", "bytes=5-9"}, plan{206, httpRange{5, 10}}},
		{"range on HEAD ignored", "HEAD", strong, []string{"Range", "bytes=5-9"}, plan{200, httpRange{0, 100}}},
		{"range ignored by server", "GET", noRange, []string{"Range", "bytes=5-9"}, plan{200, httpRange{0, 100}}},
		{"416", "GET", strong, []string{"Range", "bytes=100-"}, plan{416, httpRange{}}},
		{"two ranges", "GET", strong, []string{"Range", "bytes=0-1,3-4"}, plan{200, httpRange{0, 100}}},

		{"if-match same", "GET", strong, []string{"If-Match", `"v1-100"`}, plan{200, httpRange{0, 100}}},
		{"if-match in list with comma", "GET", strong, []string{"If-Match", `"a,b", "v1-100"`}, plan{200, httpRange{0, 100}}},
		{"if-match star", "GET", none, []string{"If-Match", "*"}, plan{200, httpRange{0, 100}}},
		{"if-match other", "GET", strong, []string{"If-Match", `"v2-100"`}, plan{412, httpRange{}}},
		{"if-match weak tag", "GET", strong, []string{"If-Match", `W/"v1-100"`}, plan{412, httpRange{}}},
		{"if-match weak resource", "GET", weak, []string{"If-Match", `W/"v1-100"`}, plan{412, httpRange{}}},
		{"if-match no etag", "GET", lmOnly, []string{"If-Match", `"v1-100"`}, plan{412, httpRange{}}},
		{"if-match beats if-unmodified-since", "GET", strong, []string{"If-Match", `"v1-100"`, "If-Unmodified-Since", date(-time.Hour)}, plan{200, httpRange{0, 100}}},
		{"if-unmodified-since earlier", "GET", strong, []string{"If-Unmodified-Since", date(-time.Hour)}, plan{412, httpRange{}}},
		{"if-unmodified-since same", "GET", strong, []string{"If-Unmodified-Since", date(0)}, plan{200, httpRange{0, 100}}},
		{"if-unmodified-since no date", "GET", weak, []string{"If-Unmodified-Since", date(-time.Hour)}, plan{200, httpRange{0, 100}}},
		{"if-unmodified-since invalid", "GET", strong, []string{"If-Unmodified-Since", "yesterday"}, plan{200, httpRange{0, 100}}},

		{"if-none-match same", "GET", strong, []string{"If-None-Match", `"v1-100"`}, plan{304, httpRange{}}},
		{"if-none-match weak compare", "HEAD", strong, []string{"If-None-Match", `"x", W/"v1-100"`}, plan{304, httpRange{}}},
		{"if-none-match weak resource", "GET", weak, []string{"If-None-Match", `"v1-100"`}, plan{304, httpRange{}}},
		{"if-none-match star", "GET", none, []string{"If-None-Match", "*"}, plan{304, httpRange{}}},
		{"if-none-match other", "GET", strong, []string{"If-None-Match", `"v0-100"`}, plan{200, httpRange{0, 100}}},
		{"if-none-match beats if-modified-since", "GET", strong, []string{"If-None-Match", `"v0-100"`, "If-Modified-Since", date(0)}, plan{200, httpRange{0, 100}}},
		{"if-modified-since same", "GET", strong, []string{"If-Modified-Since", date(0)}, plan{304, httpRange{}}},
		{"if-modified-since earlier", "GET", lmOnly, []string{"If-Modified-Since", date(-time.Second)}, plan{200, httpRange{0, 100}}},
		{"if-modified-since no date", "GET", none, []string{"If-Modified-Since", date(0)}, plan{200, httpRange{0, 100}}},
		{"412 beats 304", "GET", strong, []string{"If-Match", `"v2-100"`, "If-None-Match", `"v1-100"`}, plan{412, httpRange{}}},

		{"if-range strong", "GET", strong, []string{"Range", "bytes=5-", "If-Range", `"v1-100"`}, plan{206, httpRange{5, 100}}},
		{"if-range other", "GET", strong, []string{"Range", "bytes=5-", "If-Range", `"v2-100"`}, plan{200, httpRange{0, 100}}},
		{"if-range weak tag", "GET", weak, []string{"Range", "bytes=5-", "If-Range", `W/"v1-100"`}, plan{200, httpRange{0, 100}}},
		{"if-range strong tag vs weak", "GET", weak, []string{"Range", "bytes=5-", "If-Range", `"v1-100"`}, plan{200, httpRange{0, 100}}},
		{"if-range trailing junk", "GET", strong, []string{"Range", "bytes=5-", "If-Range", `"v1-100", "x"`}, plan{200, httpRange{0, 100}}},
		{"if-range date", "GET", lmOnly, []string{"Range", "bytes=5-", "If-Range", date(0)}, plan{206, httpRange{5, 100}}},
		{"if-range later date", "GET", lmOnly, []string{"Range", "bytes=5-", "If-Range", date(time.Hour)}, plan{200, httpRange{0, 100}}},
		{"if-range date no last-modified", "GET", weak, []string{"Range", "bytes=5-", "If-Range", date(0)}, plan{200, httpRange{0, 100}}},
		{"if-range mismatch beats 416", "GET", strong, []string{"Range", "bytes=500-", "If-Range", `"v2-100"`}, plan{200, httpRange{0, 100}}},
		{"if-range without range", "GET", strong, []string{"If-Range", `"v2-100"`}, plan{200, httpRange{0, 100}}},
	} {
		h := http.Header{}
		for i := 0; i < len(tc.h); i += 2 {
			h.Add(tc.h[i], tc.h[i+1])
		}
		if got := decide(tc.method, h, tc.rep); got != tc.want {
			t.Errorf("%s: decide(%s, %v) = %+v, want %+v", tc.name, tc.method, tc.h, got, tc.want)
		}
	}
}

func TestResourceValidators(t *testing.T) {
	r := Resource{Size: 42, Version: 3}
	if got, want := r.ETag(), `"v3-42"`; got != want {
		t.Errorf("ETag() = %s, want %s", got, want)
	}
	if got, want := r.LastModified(), time.Date(2024, 1, 1, 3, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("LastModified() = %v, want %v", got, want)
	}
	r.Validators = WeakETag
	if got, want := r.ETag(), `W/"v3-42"`; got != want || !r.LastModified().IsZero() {
		t.Errorf("WeakETag: ETag() = %s, LastModified() = %v, want %s and zero", got, r.LastModified(), want)
	}
	r.Validators = LastModifiedOnly
	if r.ETag() != "" || r.LastModified().IsZero() {
		t.Errorf("LastModifiedOnly: ETag() = %q, LastModified() = %v", r.ETag(), r.LastModified())
	}
	r.Validators = NoValidator
	if r.ETag() != "" || !r.LastModified().IsZero() {
		t.Errorf("NoValidator: ETag() = %q, LastModified() = %v", r.ETag(), r.LastModified())
	}
}
