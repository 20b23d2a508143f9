package proxy

import (
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
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
