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

func TestRecordEncodeDecode(t *testing.T) {
	now := time.Date(2026, 11, 3, 10, 4, 5, 123456789, time.UTC)
	m := Meta{
		Key:           "http://example.com/a.iso",
		ID:            0xdeadbeef01,
		Status:        200,
		Header:        map[string][]string{"Etag": {`"v1"`}, "Content-Type": {"application/octet-stream"}},
		RequestHeader: map[string][]string{"Accept-Encoding": {"gzip"}},
		Size:          1000,
		Ranges:        set([2]int64{0, 100}, [2]int64{500, 1000}),
		Epoch:         7,
		RequestTime:   now,
		ResponseTime:  now.Add(time.Second),
		Created:       now.Add(-time.Hour),
		Accessed:      now.Add(time.Minute),
	}
	b, err := encodeRecord(&m)
	if err != nil {
		t.Fatalf("encodeRecord() error: %v", err)
	}
	if strings.Contains(string(b), "ranges") || strings.Contains(string(b), "epoch") {
		t.Errorf("encodeRecord() = %s, want no range set or epoch: they have their own key", b)
	}
	got, legacy, err := decodeRecord(b)
	if err != nil || legacy {
		t.Fatalf("decodeRecord(%s) = legacy %v, error %v, want false, nil", b, legacy, err)
	}
	want := m
	want.Ranges, want.Epoch = rangeutil.Set{}, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeRecord(encodeRecord(m)) = %+v, want %+v", got, want)
	}
	epoch, rs, err := decodeRanges(encodeRanges(m.Epoch, m.Ranges))
	if err != nil || epoch != m.Epoch || !rs.Equal(m.Ranges) {
		t.Errorf("decodeRanges(encodeRanges(%d, %v)) = %d, %v, %v, want them back", m.Epoch, m.Ranges, epoch, rs, err)
	}
}

func TestDecodeRangesRejects(t *testing.T) {
	for _, b := range [][]byte{nil, {0x80}, {1}, {1, 1, 0, 0}, append(encodeRanges(1, set([2]int64{0, 5})), 0)} {
		if _, _, err := decodeRanges(b); err == nil {
			t.Errorf("decodeRanges(%x) error = nil, want one", b)
		}
	}
}

// TestDecodeRecordRejects: records written before the range set had its
// own key carry it; it must still be valid.
func TestDecodeRecordRejects(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{`, "decode record"},
		{"ranges beyond size", `{"key":"k","size":10,"ranges":[[0,11]]}`, "beyond size"},
		{"last range beyond size", `{"key":"k","size":10,"ranges":[[0,2],[5,12]]}`, "beyond size"},
		{"broken range set", `{"key":"k","size":10,"ranges":[[5,2]]}`, "decode record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeRecord([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeRecord(%s) error = %v, want one containing %q", tt.json, err, tt.want)
			}
		})
	}
}

func TestDecodeRecordLegacy(t *testing.T) {
	tests := []struct {
		name, json string
		legacy     bool
		want       Meta
	}{
		{"unknown size", `{"key":"k","size":-1,"ranges":[[0,1000]],"epoch":3}`, true, Meta{Key: "k", Size: -1, Ranges: set([2]int64{0, 1000}), Epoch: 3}},
		{"ranges up to size", `{"key":"k","size":10,"ranges":[[0,10]]}`, true, Meta{Key: "k", Size: 10, Ranges: set([2]int64{0, 10})}},
		{"no ranges", `{"key":"k","size":10,"ranges":[]}`, true, Meta{Key: "k", Size: 10}},
		{"new layout", `{"key":"k","size":10}`, false, Meta{Key: "k", Size: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, legacy, err := decodeRecord([]byte(tt.json))
			if err != nil {
				t.Fatalf("decodeRecord(%s) error: %v", tt.json, err)
			}
			if legacy != tt.legacy || got.Key != tt.want.Key || got.Size != tt.want.Size || !got.Ranges.Equal(tt.want.Ranges) || got.Epoch != tt.want.Epoch {
				t.Errorf("decodeRecord(%s) = %+v, legacy %v, want %+v, legacy %v", tt.json, got, legacy, tt.want, tt.legacy)
			}
		})
	}
}
