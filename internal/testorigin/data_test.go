package testorigin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// dataOf returns n bytes unlike the deterministic stream of any version, so
// a test cannot pass by serving the stream.
func dataOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestNormalize(t *testing.T) {
	data := dataOf(10)
	for _, tc := range []struct {
		in       Resource
		wantSize int64
		wantErr  bool
	}{
		{Resource{Size: 5}, 5, false},
		{Resource{Size: -1}, 0, true},
		{Resource{Data: data}, 10, false},
		{Resource{Data: data, Size: 10}, 10, false},
		{Resource{Data: data, Size: 11}, 0, true},
		{Resource{Data: []byte{}}, 0, false},
	} {
		got, err := normalize(tc.in)
		if (err != nil) != tc.wantErr || err == nil && got.Size != tc.wantSize {
			t.Errorf("normalize(Size %d, %d bytes of Data) = Size %d, error %v; want Size %d, error %v",
				tc.in.Size, len(tc.in.Data), got.Size, err, tc.wantSize, tc.wantErr)
		}
		if err == nil && tc.in.Data != nil && (got.Data == nil || len(got.Data) > 0 && &got.Data[0] == &tc.in.Data[0]) {
			t.Errorf("normalize(%d bytes of Data) kept the caller's slice, want a copy", len(tc.in.Data))
		}
	}
}

func TestResourceSum(t *testing.T) {
	data := dataOf(1000)
	for _, tc := range []struct {
		r    Resource
		want string
	}{
		{Resource{Size: 1000, Version: 1}, Sum(1, 1000)},
		{Resource{Size: 1000, Version: 1, Data: data}, sha256Hex(data)},
		{Resource{Version: 3, Data: []byte{}}, sha256Hex(nil)},
	} {
		if got := tc.r.Sum(); got != tc.want {
			t.Errorf("Resource{Size %d, Version %d, %d bytes of Data}.Sum() = %s, want %s",
				tc.r.Size, tc.r.Version, len(tc.r.Data), got, tc.want)
		}
	}
}

// TestDataRange checks that Data is served whole and in ranges, chunked or
// not, and that Set took a copy.
func TestDataRange(t *testing.T) {
	data := dataOf(testSize)
	for _, chunked := range []bool{false, true} {
		o, c := New(t), client(t)
		mine := bytes.Clone(data)
		o.Set("/d", Resource{Data: mine, Version: 2, Chunked: chunked})
		clear(mine) // the origin serves its own copy
		for _, tc := range []struct {
			rng        string
			start, end int64
		}{
			{"", 0, testSize},
			{"bytes=10-19", 10, 20},
			{"bytes=70000-", 70000, testSize},
			{"bytes=-5", testSize - 5, testSize},
		} {
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			resp, body := get(t, c, o.URL+"/d", hdr...)
			if !bytes.Equal(body, data[tc.start:tc.end]) || resp.Header.Get("ETag") != `"v2-300000"` {
				t.Errorf("chunked=%v GET Range %q = %d bytes, ETag %s; want Data[%d:%d], ETag \"v2-300000\"",
					chunked, tc.rng, len(body), resp.Header.Get("ETag"), tc.start, tc.end)
			}
		}
		if r, _ := o.Resource("/d"); r.Size != testSize || r.Sum() != sha256Hex(data) {
			t.Errorf("Resource(/d) = Size %d, Sum %s; want %d, %s", r.Size, r.Sum(), testSize, sha256Hex(data))
		}
	}
}

// TestDataDropAtResume checks that faults and accounting work for Data.
func TestDataDropAtResume(t *testing.T) {
	data := dataOf(testSize)
	o, c := New(t), client(t)
	o.Set("/d", Resource{Data: data, Version: 4})
	o.DropAt("/d", 100_001, 200_000)
	var got []byte
	for range 3 {
		_, body, err := fetch(t, c, http.MethodGet, o.URL+"/d",
			"Range", fmt.Sprintf("bytes=%d-", len(got)), "If-Range", `"v4-300000"`)
		got = append(got, body...)
		if err == nil {
			break
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: error %v, want %v", len(got), err, io.ErrUnexpectedEOF)
		}
	}
	if !bytes.Equal(got, data) || o.PathBodyBytes("/d") != testSize {
		t.Errorf("after two cuts: %d bytes (equal %v), PathBodyBytes %d; want Data, %d",
			len(got), bytes.Equal(got, data), o.PathBodyBytes("/d"), testSize)
	}
}

// TestDataChangeVersion checks that a version change of Data changes the
// validators, so a resume gets the whole file again, but not the bytes.
func TestDataChangeVersion(t *testing.T) {
	data := dataOf(testSize)
	o, c := New(t), client(t)
	o.Set("/d", Resource{Data: data, Version: 1})
	o.ChangeVersionAt("/d", 1000)
	if _, body, err := fetch(t, c, http.MethodGet, o.URL+"/d"); err == nil || len(body) != 1000 {
		t.Fatalf("first GET: %d bytes, error %v; want 1000 and an error", len(body), err)
	}
	resp, body := get(t, c, o.URL+"/d", "Range", "bytes=1000-", "If-Range", `"v1-300000"`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"v2-300000"` || !bytes.Equal(body, data) {
		t.Errorf("resume = %d, ETag %s, %d bytes; want 200, \"v2-300000\", the same Data", resp.StatusCode, resp.Header.Get("ETag"), len(body))
	}
}
