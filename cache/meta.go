package cache

import (
	"encoding/binary"
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
	Ranges rangeutil.Set `json:"-"`
	// Epoch is the run of the store (counted per Open) that last committed
	// this record; after a power loss, that run's entries are cut back and
	// checked first.
	Epoch uint64 `json:"-"`
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
	// Digest names the body's content, "sha256:<hex>" or "sha512:<hex>";
	// "" for none. Such a body is hashed as it is written and checked once
	// complete (Entry.DigestChecked); one that does not match is dropped.
	Digest string `json:"digest,omitempty"`
	// DigestOK is set once the complete body matched Digest.
	DigestOK bool `json:"digest_ok,omitempty"`
	// Immutable and Guarded are the caller's flags for this version, kept
	// with it: the proxy sets Immutable for a resource that never changes
	// (storable and resumable without validators, never revalidated) and
	// Guarded for one stored for a request with a signature or
	// credentials (each client must be accepted upstream before it gets
	// these bytes).
	Immutable bool `json:"immutable,omitempty"`
	Guarded   bool `json:"guarded,omitempty"`
}

// MaxHeaderBytes bounds the headers a version stores: its response fields
// and the request fields that selected it, counted as on the wire. A
// response with more is not stored (Create fails with ErrTooLarge): its
// record is read at every lookup that loads it and rewritten when its
// headers are refreshed, and a 9 MB header once took the index to 515 MB.
const MaxHeaderBytes = 64 << 10

// headerBytes is the size of h as sent on the wire ("Name: value\r\n").
func headerBytes(h map[string][]string) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// checkHeaderSize refuses m when its headers exceed MaxHeaderBytes.
func checkHeaderSize(m *Meta) error {
	if n := headerBytes(m.Header) + headerBytes(m.RequestHeader); n > MaxHeaderBytes {
		return fmt.Errorf("%w: headers of %d bytes, over the %d a version may store", ErrTooLarge, n, MaxHeaderBytes)
	}
	return nil
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

// The index keeps a version in two records, so that a checkpoint rewrites
// only what changes: the record under the key (recordKey) holds
// everything but the range set, which has its own key (rangesKey), with
// the run that committed it. A checkpoint writes a few dozen bytes,
// whatever the headers weigh.

// storedRecord is the JSON of the record under the key. Ranges and Epoch
// are only ever read: records written before the range set had its own key
// carried them (Open moves them, migrateLocked).
type storedRecord struct {
	Meta
	Ranges *rangeutil.Set `json:"ranges,omitempty"`
	Epoch  uint64         `json:"epoch,omitempty"`
}

// encodeRecord encodes m's record: all of it but Ranges and Epoch.
func encodeRecord(m *Meta) ([]byte, error) {
	b, err := json.Marshal(storedRecord{Meta: *m})
	if err != nil {
		return nil, fmt.Errorf("cache: encode record of %s: %w", logKey(m.Key), err)
	}
	return b, nil
}

// decodeRecord decodes a record under a key. legacy is set for a record
// that still carries its range set (and m.Ranges and m.Epoch are then
// those); otherwise they are left for the caller to fill from rangesKey.
func decodeRecord(b []byte) (m Meta, legacy bool, err error) {
	var r storedRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Meta{}, false, fmt.Errorf("cache: decode record: %w", err)
	}
	m = r.Meta
	if r.Ranges != nil {
		m.Ranges, m.Epoch, legacy = *r.Ranges, r.Epoch, true
	}
	return m, legacy, m.checkRanges()
}

// checkRanges refuses a range set that claims bytes past the size.
func (m *Meta) checkRanges() error {
	if m.Size < 0 || m.Ranges.Len() == 0 {
		return nil
	}
	if rs := m.Ranges.Ranges(); rs[len(rs)-1].End > m.Size {
		return fmt.Errorf("cache: record of %s: ranges end at %d, beyond size %d", logKey(m.Key), rs[len(rs)-1].End, m.Size)
	}
	return nil
}

// encodeRanges encodes a range set and the run that committed it: a
// uvarint epoch, then rangeutil's binary form.
func encodeRanges(epoch uint64, rs rangeutil.Set) []byte {
	b := binary.AppendUvarint(nil, epoch)
	enc, _ := rs.MarshalBinary() // never fails
	return append(b, enc...)
}

// decodeRanges decodes what encodeRanges wrote.
func decodeRanges(b []byte) (epoch uint64, rs rangeutil.Set, err error) {
	epoch, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, rs, fmt.Errorf("cache: decode ranges: bad epoch")
	}
	if err := rs.UnmarshalBinary(b[n:]); err != nil {
		return 0, rs, fmt.Errorf("cache: decode ranges: %w", err)
	}
	return epoch, rs, nil
}
