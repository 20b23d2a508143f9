package proxy

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// Regression tests for origins that contradict themselves (issue 9): each
// lie must leave the cache with one version's bytes under that version's
// headers, and the client with a clean copy of one version or a cut.

// TestNotModifiedWithOtherETag: a 304 answering our revalidation with
// another ETag than the stored one used to overwrite the stored validator,
// so version 0's bytes were served (and later resumed) as version 1. RFC
// 9111 §4.3.4: such a 304 selects no stored response and updates nothing;
// the client must get the current version in full.
func TestNotModifiedWithOtherETag(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		const size = 100_000
		u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=0"})
		wantBody(t, "first", h.get(u), 200, 0, 0, size)
		h.origin.SetVersion("/f", 1)
		v1, _ := h.origin.Resource("/f")
		h.origin.NotModifiedWith("/f", v1.ETag())
		r := h.get(u)
		wantBody(t, "after a 304 with another ETag", r, 200, 1, 0, size)
		if got := r.header.Get("ETag"); got != v1.ETag() {
			t.Errorf("ETag = %s, want %s", got, v1.ETag())
		}
		reqs := h.origin.Requests("/f")
		if n := len(reqs); n != 3 || reqs[2].Header.Get("If-None-Match") != "" {
			t.Fatalf("origin saw %d requests, want 3, the last unconditional", n)
		}
		r = h.get(u)
		wantBody(t, "revalidated", r, 200, 1, 0, size)
		wantXCache(t, "revalidated", r, xHit)
	})
}

// TestPartialAs200NotStored: a 200 carrying Content-Range, answering the
// Range the proxy forwarded for a client, used to be stored as the
// complete file: a 2 MiB file was then served forever as a clean 1000-byte
// one. RFC 9110 §14.4: Content-Range means nothing in a 200, so what the
// body holds is unknown; it is relayed, never stored.
func TestPartialAs200NotStored(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		const size = 2 * mib
		u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=60"})
		h.origin.PartialAs200("/f")
		r := h.get(u, "Range: bytes=0-999")
		if r.err != nil || r.n != 1000 || r.sum != sumOf(0, 0, 1000) {
			t.Fatalf("ranged client: %d bytes (error %v), want the 1000 bytes the origin sent", r.n, r.err)
		}
		r = h.get(u)
		wantBody(t, "next client", r, 200, 0, 0, size)
		wantXCache(t, "next client", r, xMiss)
		wantBody(t, "then", h.get(u), 200, 0, 0, size)
	})
}

// TestRangeWithOtherEncoding: a 206 with another Content-Encoding than the
// stored version used to be spliced (identity bytes, then encoded ones) and
// its encoding stored over the entry's. Bytes of two encodings are two
// representations (RFC 9110 §8.4): such a 206 is a changed resource, never
// spliced, whether it answers a refill (the client gets the whole file
// anew) or continues a response under way (the client is cut).
func TestRangeWithOtherEncoding(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		const size = 4 * mib
		t.Run("refill", func(t *testing.T) {
			h := newSchemeHarness(t, s)
			u := h.set("/f", testorigin.Resource{Size: size})
			h.abandon(u, "/f", mib/2, mib)
			h.origin.EncodeRanges("/f", "gzip")
			r := h.get(u)
			wantBody(t, "after a gzip 206", r, 200, 0, 0, size)
			if ce := r.header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding = %q, want none", ce)
			}
			r = h.get(u)
			wantBody(t, "then", r, 200, 0, 0, size)
			wantXCache(t, "then", r, xHit)
		})
		t.Run("continuation", func(t *testing.T) {
			h := newSchemeHarness(t, s)
			u := h.set("/f", testorigin.Resource{Size: size})
			h.origin.DropAt("/f", 2*mib)
			h.origin.EncodeRanges("/f", "gzip")
			r := h.get(u)
			if r.err == nil || r.n > 2*mib || r.sum == sumOf(0, 0, size) {
				t.Fatalf("client got %d bytes (error %v) across a change of encoding, want at most the %d identity bytes and a cut", r.n, r.err, 2*mib)
			}
			r = h.get(u)
			wantBody(t, "next client", r, 200, 0, 0, size)
			if ce := r.header.Get("Content-Encoding"); ce != "" {
				t.Errorf("next client: Content-Encoding = %q, want none", ce)
			}
		})
	})
}

// movableClock makes h's proxy read the time from a clock the test moves
// forward with the returned function. Call it before the first request.
func (h *harness) movableClock() (advance func(time.Duration)) {
	var offset atomic.Int64
	h.proxy.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	return func(d time.Duration) { offset.Add(int64(d)) }
}

// TestUpstreamAgeCounts: the Age an upstream cache sent used to be
// dropped, so a response that arrived 3595 s into a 3600 s lifetime was
// served as fresh for another hour. RFC 9111 §4.2.3: its age counts from
// 3595 s; 6 s later it is stale and is revalidated, and hits say their
// age.
func TestUpstreamAgeCounts(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		advance := h.movableClock()
		u := h.set("/f", testorigin.Resource{Size: 1000, CacheControl: "max-age=3600", Header: http.Header{"Age": {"3595"}}})
		wantBody(t, "first", h.get(u), 200, 0, 0, 1000)
		r := h.get(u)
		wantXCache(t, "second", r, xHit)
		if age, err := strconv.Atoi(r.header.Get("Age")); err != nil || age < 3595 || age >= 3600 {
			t.Errorf("hit: Age = %q, want 3595 to 3599", r.header.Get("Age"))
		}
		advance(6 * time.Second)
		h.origin.ResetCounts()
		r = h.get(u)
		wantBody(t, "6 s later", r, 200, 0, 0, 1000)
		reqs := h.origin.Requests("/f")
		if len(reqs) != 1 || reqs[0].Header.Get("If-None-Match") == "" {
			t.Fatalf("6 s later the origin saw %d requests, want one revalidation", len(reqs))
		}
	})
}

// TestDateOnlyResumeNeverMixes: a resume validated only by Last-Modified
// used to splice two versions of a file whose content changed within the
// second its date names (If-Range and If-Unmodified-Since both still
// match). Such resumes now fetch again up to 64 KiB of stored bytes and
// compare them first: the client gets the new version whole (refill), or
// is cut (continuation), never a mix.
func TestDateOnlyResumeNeverMixes(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		const size = 8 * mib
		res := testorigin.Resource{Size: size, Validators: testorigin.LastModifiedOnly}
		t.Run("refill", func(t *testing.T) {
			h := newSchemeHarness(t, s)
			u := h.set("/f", res)
			h.abandon(u, "/f", 3*mib, 4*mib)
			h.origin.ReplaceContent("/f", 1)
			wantBody(t, "after the change", h.get(u), 200, 1, 0, size)
			wantBody(t, "then", h.get(u), 200, 1, 0, size)
		})
		t.Run("continuation", func(t *testing.T) {
			h := newSchemeHarness(t, s)
			u := h.set("/f", res)
			h.origin.ReplaceContentAt("/f", 5*mib)
			r := h.get(u)
			if r.err == nil || r.n > 5*mib {
				t.Fatalf("client got %d bytes (error %v) across a change of content, want at most the %d bytes of version 0 and a cut", r.n, r.err, 5*mib)
			}
			wantBody(t, "next client", h.get(u), 200, 1, 0, size)
		})
	})
}

// TestDateOnlyResumeOverlap: a resume validated only by Last-Modified asks
// for up to 64 KiB of the bytes before the gap again, no more, and no more
// than are stored; one under a strong ETag asks for the gap alone.
func TestDateOnlyResumeOverlap(t *testing.T) {
	const size = 8 * mib
	for _, c := range []struct {
		name      string
		val       testorigin.Validators
		stop      int64 // the entry holds [0, stop)
		wantStart int64 // the refill's Range starts here
	}{
		{"last-modified", testorigin.LastModifiedOnly, 4 * mib, 4*mib - maxOverlap},
		{"last-modified, little stored", testorigin.LastModifiedOnly, 40_000, 0},
		{"strong etag", testorigin.StrongETag, 4 * mib, 4 * mib},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			u := h.set("/f", testorigin.Resource{Size: size, Validators: c.val})
			h.abandon(u, "/f", c.stop, c.stop) // the client reads all: the fill reached the stall
			h.origin.ResetCounts()
			wantBody(t, "resumed", h.get(u), 200, 0, 0, size)
			reqs := h.origin.Requests("/f")
			want := rangeutil.HeaderFor(rangeutil.Range{Start: c.wantStart, End: size})
			if len(reqs) != 1 || reqs[0].Header.Get("Range") != want {
				t.Fatalf("origin saw %d requests, first Range %q; want one, Range %q", len(reqs), reqs[0].Header.Get("Range"), want)
			}
			if sent := h.origin.PathBodyBytes("/f"); sent != size-c.wantStart {
				t.Errorf("origin sent %d body bytes, want %d", sent, size-c.wantStart)
			}
		})
	}
}
