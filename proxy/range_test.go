package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestClientRanges: single ranges of every form on cold, partial and
// complete entries get a correct 206 with the right Content-Range.
func TestClientRanges(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		const size = 2*mib + 333
		ranges := []struct {
			header     string
			start, end int64 // half-open
		}{
			{"bytes=0-0", 0, 1},
			{"bytes=100-199", 100, 200},
			{"bytes=1048575-1048576", mib - 1, mib + 1},
			{"bytes=2000000-", 2000000, size},
			{"bytes=-500", size - 500, size},
			{"bytes=-99999999", 0, size},
			{"bytes=5-99999999", 5, size},
			{"BYTES = 10-20", 10, 21},
		}
		for _, state := range []string{"cold", "partial", "complete"} {
			t.Run(state, func(t *testing.T) {
				for _, rc := range ranges {
					h := newSchemeHarness(t, s)
					u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
					switch state {
					case "partial":
						h.abandon(u, "/f", mib/2, mib)
					case "complete":
						h.get(u)
					}
					r := h.get(u, "Range: "+rc.header)
					if strings.Contains(rc.header, " = ") { // not RFC syntax: ignored
						wantBody(t, rc.header, r, 200, 0, 0, size)
						continue
					}
					wantBody(t, rc.header, r, 206, 0, rc.start, rc.end-rc.start)
					want := "bytes " + itoa(rc.start) + "-" + itoa(rc.end-1) + "/" + itoa(size)
					if got := r.header.Get("Content-Range"); got != want {
						t.Errorf("%s: Content-Range = %q, want %q", rc.header, got, want)
					}
					// The whole file afterwards is still exact.
					wantBody(t, rc.header+" then full", h.get(u), 200, 0, 0, size)
				}
			})
		}
	})
}

// TestDisjointRangesFillEntry: range requests leave disjoint spans in the
// entry; a full request fetches only the gaps.
func TestDisjointRangesFillEntry(t *testing.T) {
	h := newHarness(t)
	const size = 8 * mib
	u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
	wantBody(t, "first range", h.get(u, "Range: bytes=1048576-2097151"), 206, 0, mib, mib)
	wantBody(t, "second range", h.get(u, "Range: bytes=4194304-5242879"), 206, 0, 4*mib, mib)
	h.origin.ResetCounts()
	r := h.get(u)
	wantBody(t, "full", r, 200, 0, 0, size)
	wantXCache(t, "full", r, xPartial)
	if sent := h.origin.BodyBytes(); sent != size-2*mib {
		t.Errorf("origin sent %d body bytes for the gaps, want %d", sent, size-2*mib)
		for _, rq := range h.origin.Requests("/f") {
			t.Logf("origin request: Range %q If-Range %q If-Match %q", rq.Header.Get("Range"), rq.Header.Get("If-Range"), rq.Header.Get("If-Match"))
		}
	}
	h.origin.ResetCounts()
	wantBody(t, "hit", h.get(u, "Range: bytes=1048000-4194400"), 206, 0, 1048000, 4194401-1048000)
	if sent := h.origin.BodyBytes(); sent != 0 {
		t.Errorf("origin sent %d body bytes for a cached range, want 0", sent)
	}
}

// TestRangeEdgeCases: multiple ranges, unsatisfiable and malformed ones.
func TestRangeEdgeCases(t *testing.T) {
	const size = mib
	many := "bytes=" + strings.Repeat("1-2,", 499) + "1-2"
	for _, c := range []struct {
		header string
		status int
	}{
		{"bytes=0-10,20-30", 200}, // multiple ranges: whole body (RFC 9110 §14.2)
		{many, 200},               // 500 ranges: ignored
		{"bytes=abc", 200},        // malformed: ignored
		{"bytes=5-1", 200},        // last < first: invalid, ignored
		{"items=0-5", 200},        // unknown unit: ignored
		{"bytes=" + strings.Repeat("9", 10000) + "-", 200}, // 10 KB header: ignored
		{"bytes=1048576-", 416},
		{"bytes=2000000-3000000", 416},
		{"bytes=-0", 416},
	} {
		for _, state := range []string{"cold", "complete"} {
			h := newHarness(t)
			u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
			if state == "complete" {
				h.get(u)
			}
			name := state + " " + c.header[:min(len(c.header), 30)]
			r := h.get(u, "Range: "+c.header)
			if c.status == 416 {
				if r.status != 416 || r.header.Get("Content-Range") != "bytes */1048576" {
					t.Errorf("%s: status %d Content-Range %q, want 416 bytes */1048576", name, r.status, r.header.Get("Content-Range"))
				}
				continue
			}
			wantBody(t, name, r, c.status, 0, 0, size)
			// The proxy stays usable.
			wantBody(t, name+" then full", h.get(u), 200, 0, 0, size)
		}
	}
}

// TestIfRangeFromClient: the client's own If-Range is evaluated against the
// stored version.
func TestIfRangeFromClient(t *testing.T) {
	h := newHarness(t)
	const size = mib
	u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
	h.get(u)
	wantBody(t, "matching", h.get(u, "Range: bytes=10-", `If-Range: "v0-1048576"`), 206, 0, 10, size-10)
	wantBody(t, "other tag", h.get(u, "Range: bytes=10-", `If-Range: "other"`), 200, 0, 0, size)
	wantBody(t, "weak tag", h.get(u, "Range: bytes=10-", `If-Range: W/"v0-1048576"`), 200, 0, 0, size)
}

// TestConditionalFromClient: If-None-Match and If-Match are answered from
// the cache.
func TestConditionalFromClient(t *testing.T) {
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: 1000, CacheControl: "max-age=600"})
	h.get(u)
	if r := h.get(u, `If-None-Match: "v0-1000"`); r.status != http.StatusNotModified || r.header.Get("ETag") != `"v0-1000"` {
		t.Errorf("If-None-Match: status %d ETag %q, want 304 with the ETag", r.status, r.header.Get("ETag"))
	}
	if r := h.get(u, `If-Match: "nope"`); r.status != http.StatusPreconditionFailed {
		t.Errorf("If-Match: status %d, want 412", r.status)
	}
}
