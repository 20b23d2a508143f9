package proxy

import (
	"errors"
	"net/http"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// TestConcurrentColdClients is issue 3's bar: 16 clients ask at once for
// one cold 256 MiB file; each gets it exactly and the origin sends it about
// once.
func TestConcurrentColdClients(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		size := int64(256 * mib)
		if testing.Short() {
			size = 16 * mib
		}
		h := newSchemeHarness(t, s)
		u := h.set("/big", testorigin.Resource{Size: size})
		results := h.getAll(16, u, func(int) []string { return nil })
		for i, r := range results {
			wantBody(t, "client "+itoa(int64(i)), r, 200, 0, 0, size)
		}
		sent, max := h.origin.BodyBytes(), size*105/100
		if sent > max {
			t.Errorf("origin sent %d body bytes for 16 clients, want ≤ %d", sent, max)
		}
		t.Logf("16 clients of %d bytes: origin sent %d body bytes (%.3fx)", size, sent, float64(sent)/float64(size))
	})
}

// TestConcurrentRangeClients: clients asking for different ranges of one
// cold file at once share the fetches and all get exact bytes.
func TestConcurrentRangeClients(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		const size = 8 * mib
		h := newSchemeHarness(t, s)
		u := h.set("/f", testorigin.Resource{Size: size})
		ranges := [][2]int64{{0, size}, {mib, 3 * mib}, {2 * mib, size}, {0, mib}, {5 * mib, 6 * mib}, {0, size}}
		results := h.getAll(len(ranges), u, func(i int) []string {
			if rg := ranges[i]; rg != [2]int64{0, size} {
				return []string{"Range: bytes=" + itoa(rg[0]) + "-" + itoa(rg[1]-1)}
			}
			return nil
		})
		for i, rg := range ranges {
			status := 206
			if rg == [2]int64{0, size} {
				status = 200
			}
			wantBody(t, "client "+itoa(int64(i)), results[i], status, 0, rg[0], rg[1]-rg[0])
		}
		// The union of what was asked is the whole file; allow one more copy of
		// what clients raced for before the first entry existed.
		if sent := h.origin.BodyBytes(); sent > 2*size {
			t.Errorf("origin sent %d body bytes, want ≤ %d", sent, 2*size)
		}
	})
}

// TestConcurrentWeakETagClients: a second client of a resource that cannot
// be resumed joins the download in progress instead of dropping it (which
// used to cut the first client).
func TestConcurrentWeakETagClients(t *testing.T) {
	const size = 16 * mib
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: size, Validators: testorigin.WeakETag, CacheControl: "max-age=60"})
	results := h.getAll(4, u, func(int) []string { return nil })
	for i, r := range results {
		wantBody(t, "client "+itoa(int64(i)), r, 200, 0, 0, size)
	}
}

// TestRefillOfRangeFilledMeanwhile: a request that saw a gap can reach
// refill after a fill wrote it. refill then finds nothing missing and
// starts over (errRaced) instead of failing, or indexing an empty gap list,
// which panicked and closed the client's connection.
func TestRefillOfRangeFilledMeanwhile(t *testing.T) {
	const size = 2 * mib
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
	wantBody(t, "first client", h.get(u), 200, 0, 0, size) // the entry is complete now
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := h.store.Get(policy.CacheKey(req.URL))
	if err != nil || e == nil {
		t.Fatalf("store.Get = %v, %v; want the stored entry", e, err)
	}
	hold := e.Join()
	defer hold.Close()
	whole := rangeutil.Range{Start: 0, End: size} // the plan saw a gap in it
	if resp, err := h.proxy.refill(req, hold, whole); resp != nil || !errors.Is(err, errRaced) {
		t.Errorf("refill of a range present meanwhile = %v, %v, want nil, errRaced (start over)", resp, err)
	}
	r := h.get(u)
	wantBody(t, "next client", r, 200, 0, 0, size)
	if got := r.header.Get("X-Cache"); got != "HIT" {
		t.Errorf("next client: X-Cache %q, want HIT", got)
	}
}
