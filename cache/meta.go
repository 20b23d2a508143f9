package cache

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// Meta is the persisted description of one version of one cached resource:
// what goes into the index. It is a plain value; the live state (open file,
// locks, progress signal) lives in Entry.
//
// The cache stores headers without interpreting them: deciding what they mean
// (validators, freshness, Vary) is the proxy's job.
type Meta struct {
	// Key identifies the resource (the proxy uses the absolute URL).
	Key string `json:"key"`
	// ID names the body file of this version; a new version gets a new ID so
	// that bytes of two versions never share a file (DESIGN invariant 1).
	ID uint64 `json:"id"`
	// Status is the status code of the stored response (200).
	Status int `json:"status"`
	// Header holds the stored response headers (hop-by-hop and Set-Cookie
	// already removed by the caller).
	Header map[string][]string `json:"header"`
	// RequestHeader holds the request headers that selected this variant
	// (the ones the response's Vary names).
	RequestHeader map[string][]string `json:"request_header,omitempty"`
	// Size is the complete length of the body; -1 while unknown.
	Size int64 `json:"size"`
	// Ranges are the body bytes present in the body file. In the index it
	// only ever lists bytes written to the file before the commit (DESIGN
	// invariant 5; after a power loss, Open cuts it to checksummed blocks).
	Ranges rangeutil.Set `json:"ranges"`
	// Epoch is the run of the store (counted per Open) that last committed
	// this record; after a power loss, that run's entries are cut back and
	// checked first.
	Epoch uint64 `json:"epoch,omitempty"`
	// RequestTime and ResponseTime bracket the upstream exchange that produced
	// (or last revalidated) Header; freshness is computed from them
	// (RFC 9111 §4.2.3).
	RequestTime  time.Time `json:"request_time"`
	ResponseTime time.Time `json:"response_time"`
	// InitialAge is how old that response already was when it arrived
	// (corrected_initial_age, RFC 9111 §4.2.3: from its Date and the Age
	// an upstream cache sent); the current age adds the time since
	// ResponseTime. Zero in records written before the field existed.
	InitialAge time.Duration `json:"initial_age,omitempty"`
	// Created is when this version was first stored.
	Created time.Time `json:"created"`
	// Accessed is when this version was last looked up (Store.Get) or
	// created; eviction drops the least recently accessed first. Lookups
	// update it in memory and the store persists it in batches every minute
	// and at Close, so a crash may lose a minute of them.
	// Zero in records written before the field existed: Created stands in.
	Accessed time.Time `json:"accessed"`
}

// Complete reports whether every byte of the body is present.
func (m *Meta) Complete() bool {
	return m.Size >= 0 && m.Ranges.Contains(rangeutil.Range{Start: 0, End: m.Size})
}

// lastUse returns when the version was last accessed, for eviction.
func (m *Meta) lastUse() time.Time {
	if m.Accessed.After(m.Created) {
		return m.Accessed
	}
	return m.Created
}

func (m *Meta) clone() Meta {
	c := *m
	c.Header = cloneHeader(m.Header)
	c.RequestHeader = cloneHeader(m.RequestHeader)
	c.Ranges = m.Ranges.Clone()
	return c
}

func cloneHeader(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	c := make(map[string][]string, len(h))
	for k, v := range h {
		c[k] = append([]string(nil), v...)
	}
	return c
}

func encodeMeta(m *Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cache: encode meta %q: %w", m.Key, err)
	}
	return b, nil
}

func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("cache: decode meta: %w", err)
	}
	if m.Size >= 0 && len(m.Ranges.Ranges()) > 0 {
		if last := m.Ranges.Ranges()[len(m.Ranges.Ranges())-1]; last.End > m.Size {
			return Meta{}, fmt.Errorf("cache: decode meta %q: ranges %v beyond size %d", m.Key, m.Ranges, m.Size)
		}
	}
	return m, nil
}
