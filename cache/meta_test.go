package cache

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

func TestMetaComplete(t *testing.T) {
	tests := []struct {
		name   string
		size   int64
		ranges [][2]int64
		want   bool
	}{
		{"unknown size, nothing", -1, nil, false},
		{"unknown size, some bytes", -1, [][2]int64{{0, 100}}, false},
		{"empty body", 0, nil, true},
		{"nothing yet", 10, nil, false},
		{"prefix", 10, [][2]int64{{0, 9}}, false},
		{"suffix", 10, [][2]int64{{1, 10}}, false},
		{"hole", 10, [][2]int64{{0, 4}, {5, 10}}, false},
		{"all", 10, [][2]int64{{0, 10}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Meta{Size: tt.size, Ranges: set(tt.ranges...)}
			if got := m.Complete(); got != tt.want {
				t.Errorf("Meta{Size: %d, Ranges: %v}.Complete() = %v, want %v", tt.size, m.Ranges, got, tt.want)
			}
		})
	}
}

func TestMetaCloneIsDeep(t *testing.T) {
	m := Meta{
		Key:           "k",
		Header:        map[string][]string{"Etag": {`"a"`}},
		RequestHeader: map[string][]string{"Accept-Language": {"en"}},
		Ranges:        set([2]int64{0, 10}),
	}
	c := m.clone()
	if !reflect.DeepEqual(c, m) {
		t.Fatalf("clone() = %+v, want %+v", c, m)
	}
	c.Header["Etag"][0] = `"b"`
	c.Header["New"] = []string{"x"}
	c.RequestHeader["Accept-Language"][0] = "fr"
	c.Ranges.Insert(rangeutil.Range{Start: 20, End: 30})
	if got := m.Header["Etag"][0]; got != `"a"` {
		t.Errorf("after changing the clone, Header[Etag] = %q, want %q", got, `"a"`)
	}
	if _, ok := m.Header["New"]; ok {
		t.Errorf("after changing the clone, Header has key New, want not")
	}
	if got := m.RequestHeader["Accept-Language"][0]; got != "en" {
		t.Errorf("after changing the clone, RequestHeader[Accept-Language] = %q, want en", got)
	}
	if want := set([2]int64{0, 10}); !m.Ranges.Equal(want) {
		t.Errorf("after changing the clone, Ranges = %v, want %v", m.Ranges, want)
	}
	if c := (&Meta{}).clone(); c.Header != nil || c.RequestHeader != nil {
		t.Errorf("Meta{}.clone() headers = %v, %v, want nil, nil", c.Header, c.RequestHeader)
	}
}

func TestMetaEncodeDecode(t *testing.T) {
	now := time.Date(2026, 11, 3, 10, 4, 5, 123456789, time.UTC)
	m := Meta{
		Key:           "http://example.com/a.iso",
		ID:            0xdeadbeef01,
		Status:        200,
		Header:        map[string][]string{"Etag": {`"v1"`}, "Content-Type": {"application/octet-stream"}},
		RequestHeader: map[string][]string{"Accept-Encoding": {"gzip"}},
		Size:          1000,
		Ranges:        set([2]int64{0, 100}, [2]int64{500, 1000}),
		RequestTime:   now,
		ResponseTime:  now.Add(time.Second),
		Created:       now.Add(-time.Hour),
		Accessed:      now.Add(time.Minute),
	}
	b, err := encodeMeta(&m)
	if err != nil {
		t.Fatalf("encodeMeta() error: %v", err)
	}
	got, err := decodeMeta(b)
	if err != nil {
		t.Fatalf("decodeMeta(%s) error: %v", b, err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("decodeMeta(encodeMeta(m)) = %+v, want %+v", got, m)
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{`, "decode meta"},
		{"ranges beyond size", `{"key":"k","size":10,"ranges":[[0,11]]}`, "beyond size"},
		{"last range beyond size", `{"key":"k","size":10,"ranges":[[0,2],[5,12]]}`, "beyond size"},
		{"broken range set", `{"key":"k","size":10,"ranges":[[5,2]]}`, "decode meta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeMeta([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeMeta(%s) error = %v, want one containing %q", tt.json, err, tt.want)
			}
		})
	}
}

func TestDecodeMetaAccepts(t *testing.T) {
	tests := []struct {
		name, json string
		want       Meta
	}{
		{"unknown size", `{"key":"k","size":-1,"ranges":[[0,1000]]}`, Meta{Key: "k", Size: -1, Ranges: set([2]int64{0, 1000})}},
		{"ranges up to size", `{"key":"k","size":10,"ranges":[[0,10]]}`, Meta{Key: "k", Size: 10, Ranges: set([2]int64{0, 10})}},
		{"no ranges", `{"key":"k","size":10,"ranges":[]}`, Meta{Key: "k", Size: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMeta([]byte(tt.json))
			if err != nil {
				t.Fatalf("decodeMeta(%s) error: %v", tt.json, err)
			}
			if got.Key != tt.want.Key || got.Size != tt.want.Size || !got.Ranges.Equal(tt.want.Ranges) {
				t.Errorf("decodeMeta(%s) = %+v, want %+v", tt.json, got, tt.want)
			}
		})
	}
}
