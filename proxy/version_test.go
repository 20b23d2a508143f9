package proxy

import (
	"net/http"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestChangedBetweenAttempts: the file changes upstream after a client
// abandoned it; the next client gets exactly the new version, never a mix.
func TestChangedBetweenAttempts(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, val := range []testorigin.Validators{testorigin.StrongETag, testorigin.LastModifiedOnly} {
			t.Run(validatorName(val), func(t *testing.T) {
				h := newSchemeHarness(t, s)
				const size = 8 * mib
				u := h.set("/f", testorigin.Resource{Size: size, Validators: val})
				h.abandon(u, "/f", 3*mib, 4*mib)
				h.origin.SetVersion("/f", 1)
				r := h.get(u)
				wantBody(t, "after change", r, 200, 1, 0, size)
				wantXCache(t, "after change", r, xMiss)
				r = h.get(u, "Range: bytes=100-")
				wantBody(t, "range of new version", r, 206, 1, 100, size-100)
			})
		}
	})
}

// TestChangedBetweenAttemptsRangeClient: a client resuming itself after
// the file changed gets bytes of the new version only.
func TestChangedBetweenAttemptsRangeClient(t *testing.T) {
	h := newHarness(t)
	const size = 4 * mib
	u := h.set("/f", testorigin.Resource{Size: size})
	const n = mib
	h.abandon(u, "/f", n, 2*mib)
	h.origin.SetVersion("/f", 1)
	// The client's own If-Range names the version it has: it must get all of
	// the new one (RFC 9110 §13.1.5), not a 206.
	r := h.get(u, "Range: bytes="+itoa(n)+"-", `If-Range: "v0-4194304"`)
	wantBody(t, "resume after change", r, 200, 1, 0, size)
}

// TestChangedMidResponse: the file is replaced while a client is being
// served and the upstream drops; the continuation (If-Match) fails, so the
// client is cut rather than sent a mix, and the next client gets the new
// version.
func TestChangedMidResponse(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		const size = 8 * mib
		u := h.set("/f", testorigin.Resource{Size: size})
		h.origin.ChangeVersionAt("/f", 5*mib)
		r := h.get(u)
		if r.err == nil {
			t.Fatalf("client got a clean body of %d bytes across a version change, want a cut", r.n)
		}
		if r.n > 5*mib {
			t.Fatalf("client got %d bytes, more than the %d of the old version the origin sent", r.n, 5*mib)
		}
		wantBody(t, "next client", h.get(u), 200, 1, 0, size)
		reqs := h.origin.Requests("/f")
		if got := reqs[1].Header.Get("If-Match"); got != `"v0-8388608"` {
			t.Errorf("continuation If-Match = %q, want the old strong ETag", got)
		}
	})
}

// TestNeverSpliceWithoutStrongValidator: weak ETags, no validator, and
// servers that ignore Range are served correctly and refetched from the
// start, never spliced.
func TestNeverSpliceWithoutStrongValidator(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, c := range []struct {
			name string
			res  testorigin.Resource
		}{
			{"weak-etag", testorigin.Resource{Size: 4 * mib, Validators: testorigin.WeakETag, CacheControl: "max-age=60"}},
			{"no-validator", testorigin.Resource{Size: 4 * mib, Validators: testorigin.NoValidator, CacheControl: "max-age=60"}},
			{"ignores-range", testorigin.Resource{Size: 4 * mib, IgnoreRange: true}},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s)
				u := h.set("/f", c.res)
				h.abandon(u, "/f", mib, 2*mib)
				h.origin.SetVersion("/f", 1) // a splice would now show as wrong bytes
				r := h.get(u)
				wantBody(t, "after abandon", r, 200, 1, 0, c.res.Size)
				for i, rq := range h.origin.Requests("/f") {
					if ir := rq.Header.Get("If-Range"); ir != "" && c.res.Validators != testorigin.StrongETag {
						t.Errorf("request %d sent If-Range %q without a strong validator", i, ir)
					}
				}
			})
		}
	})
}

// TestDropWithoutStrongValidatorCutsClient: with nothing to resume safely,
// an upstream drop cuts the client; the next request starts over.
func TestDropWithoutStrongValidatorCutsClient(t *testing.T) {
	h := newHarness(t)
	const size = 4 * mib
	u := h.set("/f", testorigin.Resource{Size: size, Validators: testorigin.WeakETag, CacheControl: "max-age=60"})
	h.origin.DropAt("/f", 2*mib)
	r := h.get(u)
	if r.err == nil {
		t.Fatalf("client got a clean body of %d bytes, want a cut", r.n)
	}
	h.origin.SetVersion("/f", 1)
	wantBody(t, "next", h.get(u), 200, 1, 0, size)
}

// TestLyingContentRange: a 206 whose Content-Range start is wrong is never
// spliced, on a refill or on a continuation.
func TestLyingContentRange(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		t.Run("refill", func(t *testing.T) {
			h := newSchemeHarness(t, s)
			const size = 4 * mib
			u := h.set("/f", testorigin.Resource{Size: size})
			h.abandon(u, "/f", mib, 2*mib)
			h.origin.LieContentRange("/f", 7)
			wantBody(t, "after lie", h.get(u), 200, 0, 0, size)
			wantBody(t, "next", h.get(u), 200, 0, 0, size)
		})
		t.Run("continuation", func(t *testing.T) {
			h := newSchemeHarness(t, s)
			const size = 4 * mib
			u := h.set("/f", testorigin.Resource{Size: size})
			h.origin.DropAt("/f", mib)
			h.origin.LieContentRange("/f", -3)
			wantBody(t, "download", h.get(u), 200, 0, 0, size)
		})
	})
}

// TestUpstreamErrorOnRefill: a 503 while refilling is passed on, and the
// cached bytes stay for the next attempt.
func TestUpstreamErrorOnRefill(t *testing.T) {
	h := newHarness(t)
	const size = 4 * mib
	u := h.set("/f", testorigin.Resource{Size: size})
	h.exhaustRetriesAt("/f", 2*mib) // leaves a partial entry of 2 MiB
	if r := h.get(u); r.err == nil {
		t.Fatalf("first client got a clean body of %d bytes, want a cut", r.n)
	}
	h.origin.FailNext("/f", http.StatusServiceUnavailable, 1)
	if r := h.get(u); r.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want the upstream's 503", r.status)
	}
	h.origin.ResetCounts()
	wantBody(t, "after 503", h.get(u), 200, 0, 0, size)
	if sent := h.origin.BodyBytes(); sent != size-2*mib {
		t.Errorf("origin sent %d body bytes after the 503, want %d", sent, size-2*mib)
	}
}

func validatorName(v testorigin.Validators) string {
	return map[testorigin.Validators]string{
		testorigin.StrongETag: "strong-etag", testorigin.WeakETag: "weak-etag",
		testorigin.LastModifiedOnly: "last-modified", testorigin.NoValidator: "none",
	}[v]
}

// TestLyingPartialToClientRange: a cold request with a Range forwards it
// upstream; a 206 for other bytes than asked is never stored nor passed
// on (DESIGN invariant 3), cached or not. Regression: the chaos test found
// the answer to a forwarded Range stored and served at the offsets its
// Content-Range claimed, 9 bytes from where they belong.
func TestLyingPartialToClientRange(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, cc := range []string{"max-age=3600", "no-store"} {
			h := newSchemeHarness(t, s)
			const size = 100_000
			u := h.set("/f", testorigin.Resource{Size: size, CacheControl: cc})
			h.origin.LieContentRange("/f", -9)
			r := h.get(u, "Range: bytes=50000-")
			if r.status != http.StatusBadGateway {
				t.Errorf("%s: lying 206: status %d, want 502", cc, r.status)
			}
			wantBody(t, cc+": next full request", h.get(u), 200, 0, 0, size)
		}
	})
}
